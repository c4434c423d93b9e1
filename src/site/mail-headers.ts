/**
 * Just enough header parsing to show a caught message in a list: the unfolded
 * value of one header, with RFC 2047 encoded words decoded.
 */
export function headerValue(raw: Buffer, name: string): string {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end === -1 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const wanted = name.toLowerCase() + ':';
  for (const line of head.split(/\r?\n/)) {
    if (line.toLowerCase().startsWith(wanted)) {
      return decodeWords(Buffer.from(line.slice(wanted.length), 'latin1').toString('utf8').trim());
    }
  }
  return '';
}

const ENCODED_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

export function decodeWords(value: string): string {
  // Whitespace between two encoded words is not part of the text.
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(ENCODED_WORD, (word, charset: string, encoding: string, data: string) => {
      try {
        const bytes =
          encoding.toUpperCase() === 'B'
            ? Buffer.from(data, 'base64')
            : Buffer.from(
                data
                  .replace(/_/g, ' ')
                  .replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) =>
                    String.fromCharCode(parseInt(h, 16)),
                  ),
                'latin1',
              );
        return new TextDecoder(charset.split('*')[0]).decode(bytes);
      } catch {
        return word;
      }
    });
}
