/**
 * The parts of AdmissionReview (admission.k8s.io/v1) the injector reads and writes, and the checks that turn
 * an untrusted request body into them. Only chosen fields are kept; the rest of the review is never logged.
 */
import { ProxyError } from '../errors.js';
import type { AddOperation } from './json-patch.js';

export const admissionApiVersion = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly operation: string;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly dryRun: boolean;
  /** The object as sent; checked further by whoever understands its kind. */
  readonly object: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  patch?: string;
  status?: { code: number; message: string };
  warnings?: string[];
}

export interface AdmissionReviewResponse {
  apiVersion: typeof admissionApiVersion;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The body is not a v1 AdmissionReview: answered 400 BAD_REVIEW, the message safe to return to the API server. */
export class AdmissionReviewError extends ProxyError {
  constructor(message: string) {
    super('BAD_REVIEW', message);
    this.name = 'AdmissionReviewError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Throws AdmissionReviewError (safe to return to the API server) when the body is not a v1 AdmissionReview. */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isRecord(body)) throw new AdmissionReviewError('body is not a JSON object');
  if (body.kind !== 'AdmissionReview') throw new AdmissionReviewError('kind must be AdmissionReview');
  if (body.apiVersion !== admissionApiVersion) {
    throw new AdmissionReviewError(`apiVersion must be ${admissionApiVersion} (set admissionReviewVersions: [v1])`);
  }
  const request = body.request;
  if (!isRecord(request)) throw new AdmissionReviewError('request is missing');
  if (typeof request.uid !== 'string' || request.uid === '') throw new AdmissionReviewError('request.uid is missing');
  const kind = request.kind;
  if (!isRecord(kind) || typeof kind.kind !== 'string' || typeof kind.version !== 'string') {
    throw new AdmissionReviewError('request.kind is missing');
  }
  return {
    uid: request.uid,
    kind: { group: typeof kind.group === 'string' ? kind.group : '', version: kind.version, kind: kind.kind },
    operation: typeof request.operation === 'string' ? request.operation : '',
    namespace: optionalString(request.namespace),
    name: optionalString(request.name),
    dryRun: request.dryRun === true,
    object: request.object,
  };
}

export function reviewResponse(response: AdmissionResponse): AdmissionReviewResponse {
  return { apiVersion: admissionApiVersion, kind: 'AdmissionReview', response };
}

export function patchResponse(uid: string, ops: readonly AddOperation[]): AdmissionReviewResponse {
  if (ops.length === 0) return reviewResponse({ uid, allowed: true });
  return reviewResponse({
    uid,
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(ops)).toString('base64'),
  });
}

export function denyResponse(uid: string, message: string, code = 400): AdmissionReviewResponse {
  return reviewResponse({ uid, allowed: false, status: { code, message } });
}
