// Errors in OpenAI's shape ({ error: { message, type, param, code } }) with their HTTP status, and the mapping from the
// library's AglmError codes. Every failure a client sees goes through here, over HTTP, SSE, gRPC and batch files alike.
import { AglmError } from '../errors.js';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'server_error' | 'overloaded_error';

export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Seconds a client should wait before trying again (503), sent as Retry-After. */
  readonly retryAfter: number | undefined;

  constructor(status: number, type: ApiErrorType, message: string, options: { param?: string; code?: string; retryAfter?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.retryAfter = options.retryAfter;
  }

  /** The response body. */
  toJSON(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export function badRequest(message: string, param?: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, 'invalid_request_error', message, { param, code });
}

/** A 400 naming a parameter that has the wrong type or range, in one sentence shape. */
export function badParam(param: string, expected: string, value: unknown): ApiError {
  const shown = value === undefined ? 'nothing' : JSON.stringify(value)?.slice(0, 80) ?? String(value);
  return badRequest(`Expected ${expected} for '${param}' but received ${shown}`, param, 'invalid_type');
}

/** Any failure as an ApiError: the library's own errors by code, anything else a 500 that reveals nothing internal. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof AglmError) {
    switch (e.code) {
      case 'INVALID_ARGUMENT':
      case 'CHAT_TEMPLATE_ERROR':
        return new ApiError(400, 'invalid_request_error', e.message, { code: 'invalid_value', cause: e });
      case 'INVALID_GRAMMAR':
        return new ApiError(400, 'invalid_request_error', e.message, { code: 'invalid_grammar', cause: e });
      case 'CONTEXT_FULL':
        return new ApiError(400, 'invalid_request_error', e.message, { code: 'context_length_exceeded', cause: e });
      case 'NO_SEQUENCE_LEFT':
      case 'BUSY':
        return new ApiError(503, 'overloaded_error', e.message, { code: 'overloaded', retryAfter: 1, cause: e });
      case 'ABORTED':
        return new ApiError(499, 'invalid_request_error', 'The request was cancelled', { code: 'cancelled', cause: e });
      case 'DISPOSED':
        return new ApiError(503, 'server_error', 'The server is shutting down', { code: 'shutting_down', cause: e });
      default:
        return new ApiError(500, 'server_error', `Internal error (${e.code})`, { code: 'internal_error', cause: e });
    }
  }
  return new ApiError(500, 'server_error', 'Internal error', { code: 'internal_error', cause: e });
}
