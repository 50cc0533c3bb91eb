import type { ServiceDefinition } from '../../src/service-definition/types.js';

/** A normalized deployed definition of the busybox test service, with overrides. */
export function testDefinition(slug: string, over: Partial<ServiceDefinition> = {}): ServiceDefinition {
  return {
    service_slug: slug,
    display_name: slug,
    service_type: 'deployed',
    docker_image: 'cyberun-test/busybox-http:1',
    exposed_port: 8080,
    health_path: '/health',
    env_config: [],
    volume_config: [],
    required_labels: [],
    gpu_count: 0,
    replica_count: 1,
    ...over,
  };
}
