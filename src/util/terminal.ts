/**
 * Text from mail, remotes and build output, made inert for a terminal: a
 * caught mail's subject could otherwise set the window title, clear the
 * screen or rewrite what was printed before.
 */
// C0 controls but tab and newline, DEL, and the C1 range: what a terminal acts on.
/* eslint-disable no-control-regex -- matching control characters is the point */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
const CONTROLS_BUT_CR = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/g;
/* eslint-enable no-control-regex */

/**
 * Control characters shown as `\xNN`, readable as text. `keepCr`: the
 * carriage returns of logs (progress lines) and of mail (CRLF).
 */
export function escapeControls(text: string, keepCr = false): string {
  return text.replace(
    keepCr ? CONTROLS_BUT_CR : CONTROLS,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
