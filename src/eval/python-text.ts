/**
 * The few Python `str` operations the lm-evaluation-harness task templates apply, with Python's semantics where
 * JavaScript's differ: which characters are whitespace (`strip`), what `capitalize` does to the first character
 * (title case, not upper case) and to the rest (lower case), and what `.` matches in a regular expression.
 * Prompts must be byte-identical to the harness's, or the scores are not comparable.
 */

/** Python's str.isspace() for one code point (Unicode White_Space plus the ASCII separators 0x1c-0x1f). */
export function isPySpace(cp: number): boolean {
  return (
    (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp === 0x85 || cp === 0xa0 || cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000
  );
}

/** str.rstrip() with no argument. */
export function pyRstrip(s: string): string {
  let end = s.length;
  while (end > 0 && isPySpace(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end);
}

/** str.strip() with no argument. */
export function pyStrip(s: string): string {
  let start = 0;
  while (start < s.length && isPySpace(s.charCodeAt(start))) start++;
  return pyRstrip(s.slice(start));
}

/** Characters whose title case (what capitalize() gives the first character) differs from their upper case. */
const TITLE_EXCEPTIONS: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>([
    [0xdf, 'Ss'], [0x1c4, '\u01c5'], [0x1c6, '\u01c5'], [0x1c7, '\u01c8'], [0x1c9, '\u01c8'], [0x1ca, '\u01cb'],
    [0x1cc, '\u01cb'], [0x1f1, '\u01f2'], [0x1f3, '\u01f2'], [0x587, '\u0535\u0582'],
    [0x1fb2, '\u1fba\u0345'], [0x1fb3, '\u1fbc'], [0x1fb4, '\u0386\u0345'], [0x1fb7, '\u1fbc\u0342'],
    [0x1fc2, '\u1fca\u0345'], [0x1fc3, '\u1fcc'], [0x1fc4, '\u0389\u0345'], [0x1fc7, '\u1fcc\u0342'],
    [0x1ff2, '\u1ffa\u0345'], [0x1ff3, '\u1ffc'], [0x1ff4, '\u038f\u0345'], [0x1ff7, '\u1ffc\u0342'],
    [0xfb00, 'Ff'], [0xfb01, 'Fi'], [0xfb02, 'Fl'], [0xfb03, 'Ffi'], [0xfb04, 'Ffl'], [0xfb05, 'St'], [0xfb06, 'St'],
    [0xfb13, '\u0544\u0576'], [0xfb14, '\u0544\u0565'], [0xfb15, '\u0544\u056b'], [0xfb16, '\u054e\u0576'],
    [0xfb17, '\u0544\u056d'],
  ]);
  // Titlecase letters and Georgian Mkhedruli stay as they are; Greek with ypogegrammeni gains prosgegrammeni.
  for (const cp of [0x1c5, 0x1c8, 0x1cb, 0x1f2, 0x1fbc, 0x1fcc, 0x1ffc]) m.set(cp, String.fromCodePoint(cp));
  for (let cp = 0x10d0; cp <= 0x10ff; cp++) if (cp !== 0x10fb && cp !== 0x10fc) m.set(cp, String.fromCodePoint(cp));
  for (const base of [0x1f80, 0x1f90, 0x1fa0]) {
    for (let i = 0; i < 8; i++) {
      m.set(base + i, String.fromCodePoint(base + 8 + i));
      m.set(base + 8 + i, String.fromCodePoint(base + 8 + i));
    }
  }
  return m;
})();

/** str.capitalize(): the first character in title case, the rest in lower case. */
export function pyCapitalize(s: string): string {
  if (s === '') return s;
  const cp = s.codePointAt(0)!;
  const first = String.fromCodePoint(cp);
  const head = TITLE_EXCEPTIONS.get(cp) ?? first.toUpperCase();
  // Lower-case the whole string so a final sigma sees the character before it, then drop the first character's part.
  return head + s.toLowerCase().slice(first.toLowerCase().length);
}

/** UTF-8 length in bytes. */
export function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Python's len(): code points, not UTF-16 units. */
export function pyLen(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}
