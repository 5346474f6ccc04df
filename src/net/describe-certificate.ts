/**
 * What a log line may say about a certificate: its subject, serial number and expiry. All public; never
 * key material. Used for the webhook's serving certificate and for client certificates to upstreams.
 */
import { X509Certificate } from 'node:crypto';

export function describeCertificate(certPem: Buffer): { subject?: string; serialNumber?: string; notAfter?: string } {
  try {
    const certificate = new X509Certificate(certPem);
    return {
      subject: certificate.subject.replace(/\n/g, ', '),
      serialNumber: certificate.serialNumber,
      notAfter: new Date(certificate.validTo).toISOString(),
    };
  } catch {
    return {};
  }
}
