/** The tunnel protocol's version, endpoint path, frame size limits and close codes (docs/protocol.md). */

/** The newest version this build speaks; it says this in its hello. */
export const PROTOCOL_VERSION = 3;
/** The oldest version this build still speaks: a gateway welcomes agents of 2 and 3. */
export const MIN_PROTOCOL_VERSION = 2;
/** From this version on the agent may send a response head with its first body chunk in one binary frame. */
export const COMBINED_RESPONSE_VERSION = 3;

/** Path of the agent endpoint on the gateway. */
export const AGENT_CONNECT_PATH = '/api/v1/agent/connect';

/** Largest frame either side accepts (ws maxPayload). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Largest text (control) frame the gateway parses. JSON parsing and schema checks run on the event
 * loop, so control frames are capped far below stream data: a frame above it is answered with
 * `frame_too_large` and counted as invalid, without being parsed. 1 MiB holds a status snapshot
 * of about 2,000 services.
 */
export const MAX_CONTROL_FRAME_BYTES = 1024 * 1024;

/** Close code a gateway uses when a newer connection of the same agent_id replaces this one. */
export const CLOSE_REPLACED = 4001;
/** Close code for a hello with an unsupported protocol_version. */
export const CLOSE_UNSUPPORTED_VERSION = 4002;
/** Close code when no valid hello arrived within the gateway's hello timeout. */
export const CLOSE_HELLO_TIMEOUT = 4003;
/** Close code for a hello whose agent_id the connection's agent key was not issued for. */
export const CLOSE_AGENT_ID_REFUSED = 4004;
/** Close code for a hello whose agent_id a live connection holds (it answered the gateway's ping). */
export const CLOSE_AGENT_ID_IN_USE = 4005;
/** Close code when a connection sent more invalid frames than the gateway's limit allows. */
export const CLOSE_TOO_MANY_INVALID = 4006;
