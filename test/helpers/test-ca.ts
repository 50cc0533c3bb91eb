import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TestPki {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * A throwaway CA and a server certificate it signed, generated at test time with the `openssl`
 * CLI (valid 1 day; nothing is stored in the repository). `names` become DNS SANs; 127.0.0.1 and
 * ::1 are always IP SANs.
 */
export async function generateTestPki(names: string[] = ['localhost']): Promise<TestPki> {
  const dir = await mkdtemp(join(tmpdir(), 'cyberun-pki-'));
  const p = (f: string) => join(dir, f);
  const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  try {
    await exec('openssl', ['req', '-x509', ...curve, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=cyberun test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    await exec('openssl', ['req', ...curve, '-keyout', p('srv.key'), '-out', p('srv.csr'), '-subj', `/CN=${names[0] ?? 'localhost'}`]);
    const san = [...names.map((n) => `DNS:${n}`), 'IP:127.0.0.1', 'IP:::1'].join(',');
    await writeFile(p('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
    await exec('openssl', ['x509', '-req', '-in', p('srv.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('srv.pem'), '-days', '1', '-extfile', p('ext.cnf')]);
    const [caPem, certPem, keyPem] = await Promise.all([readFile(p('ca.pem'), 'utf8'), readFile(p('srv.pem'), 'utf8'), readFile(p('srv.key'), 'utf8')]);
    return { caPem, certPem, keyPem };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
