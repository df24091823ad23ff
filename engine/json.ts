/** JSON from a user's file, parsed without ever repeating its bytes in an error. */
import { EngineInputError } from './types.ts';

/**
 * JSON.parse of `text`; a syntax error becomes an EngineInputError "<what> is not valid JSON", with the
 * character it stopped at when the parser says so, and never the text around it (JSON.parse quotes it).
 */
export function parseJson(text: string, what: string, subject: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const message = (e as Error)?.message ?? '';
    const at = /at position (\d+)/.exec(message);
    const where = at ? ` (at character ${Number(at[1]) + 1})` : /end of JSON input/i.test(message) ? ' (it ends early)' : '';
    throw new EngineInputError(`${what} is not valid JSON${where}`, subject);
  }
}
