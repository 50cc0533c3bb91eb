/**
 * A Cyberun container service definition, the body of `POST /api/v1/containers`, after
 * validation and normalization (every default applied). Field names are Cyberun's, unchanged.
 * The zod schema in `service-definition.ts` produces exactly this type.
 */
export type ServiceType = 'deployed' | 'external';

export interface EnvVar {
  env_name: string;
  env_value: string;
}

export interface VolumeMount {
  host_path: string;
  container_path: string;
}

export interface ServiceDefinition {
  service_slug: string;
  display_name: string;
  service_desc?: string | undefined;
  service_type: ServiceType;
  /** Present exactly when service_type is 'deployed'. */
  docker_image?: string | undefined;
  /** Present exactly when service_type is 'external'; https only. */
  external_url?: string | undefined;
  external_auth_credential_id?: string | undefined;
  exposed_port: number;
  health_path: string;
  env_config: EnvVar[];
  volume_config: VolumeMount[];
  required_labels: string[];
  /** -1 = every GPU of the host, 0 = none, N = N exclusive GPUs. */
  gpu_count: number;
  replica_count: number;
  usage_prompt?: string | undefined;
  openapi_url?: string | undefined;
}

/** One validation problem: where (JSON path like `env_config[1].env_name`), and what. */
export interface DefinitionIssue {
  path: string;
  message: string;
}

/** A definition as the agent receives it: the platform's id plus the normalized definition. */
export interface DesiredService {
  id: string;
  definition: ServiceDefinition;
  /**
   * When the service was last deployed (epoch ms, the gateway's clock). A new value for a service
   * the agent already holds means deploy was asked for again: failed replicas are tried at once.
   */
  deployedAt?: number | undefined;
}
