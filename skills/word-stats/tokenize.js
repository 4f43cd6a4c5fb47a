/** Lower-cased words (letters, digits, apostrophes) of a text. */
export function tokenize(text) {
  return (text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []).filter((w) => w !== "'");
}
