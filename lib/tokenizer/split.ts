// Splitting text into pieces with a regex, with the delimiter behaviors of Hugging Face's Split pre-tokenizer.

/** What happens to the matched parts (Hugging Face `SplitDelimiterBehavior`). */
export type SplitBehavior = 'Isolated' | 'Removed' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** Appends to `out` the pieces of `text`: every match and every run between matches (empty pieces are dropped). */
export function splitIsolated(re: RegExp, text: string, out: string[]): void {
  const n = text.length;
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (start > prev) out.push(text.slice(prev, start));
    if (end > start) {
      out.push(m[0]);
    } else {
      // An empty match is a cut point; step over one code point so the search moves on.
      const c = text.charCodeAt(start);
      re.lastIndex = start + (c >= 0xd800 && c <= 0xdbff && start + 1 < n ? 2 : 1);
      if (start >= n) break;
    }
    prev = end;
  }
  if (prev < n) out.push(text.slice(prev));
}

/** [start, end, isMatch] triples covering `text` in order (empty matches are cut points with no width). */
function matchSpans(re: RegExp, text: string): [number, number, boolean][] {
  const spans: [number, number, boolean][] = [];
  const n = text.length;
  re.lastIndex = 0;
  let prev = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const start = m.index;
    const end = start + m[0].length;
    if (start > prev) spans.push([prev, start, false]);
    if (end > start) spans.push([start, end, true]);
    else {
      const c = text.charCodeAt(start);
      re.lastIndex = start + (c >= 0xd800 && c <= 0xdbff && start + 1 < n ? 2 : 1);
      if (start >= n) break;
    }
    prev = end;
  }
  if (prev < n) spans.push([prev, n, false]);
  return spans;
}

/** Splits with any behavior; `invert` makes the text between matches the delimiters instead. */
export function splitWith(re: RegExp, text: string, behavior: SplitBehavior, invert: boolean, out: string[]): void {
  if (behavior === 'Isolated' && !invert) {
    splitIsolated(re, text, out);
    return;
  }
  const spans = matchSpans(re, text);
  if (invert) for (const s of spans) s[2] = !s[2];
  const pieces: [number, number][] = [];
  switch (behavior) {
    case 'Isolated':
      for (const [a, b] of spans) pieces.push([a, b]);
      break;
    case 'Removed':
      for (const [a, b, isMatch] of spans) if (!isMatch) pieces.push([a, b]);
      break;
    case 'MergedWithPrevious': {
      let prevMatch = false;
      for (const [a, b, isMatch] of spans) {
        if (isMatch && !prevMatch && pieces.length > 0) pieces[pieces.length - 1][1] = b;
        else pieces.push([a, b]);
        prevMatch = isMatch;
      }
      break;
    }
    case 'MergedWithNext': {
      let nextMatch = false;
      const rev: [number, number][] = [];
      for (let i = spans.length - 1; i >= 0; i--) {
        const [a, b, isMatch] = spans[i];
        if (isMatch && !nextMatch && rev.length > 0) rev[rev.length - 1][0] = a;
        else rev.push([a, b]);
        nextMatch = isMatch;
      }
      for (let i = rev.length - 1; i >= 0; i--) pieces.push(rev[i]);
      break;
    }
    case 'Contiguous': {
      let prevMatch: boolean | undefined;
      for (const [a, b, isMatch] of spans) {
        if (isMatch && prevMatch === true && pieces.length > 0) pieces[pieces.length - 1][1] = b;
        else pieces.push([a, b]);
        prevMatch = isMatch;
      }
      break;
    }
  }
  for (const [a, b] of pieces) if (b > a) out.push(text.slice(a, b));
}

/** Splits every piece with each regex in turn (Isolated). */
export function splitSequence(regexes: readonly RegExp[], text: string): string[] {
  let pieces = [text];
  for (const re of regexes) {
    const next: string[] = [];
    for (const p of pieces) splitIsolated(re, p, next);
    pieces = next;
  }
  return pieces;
}
