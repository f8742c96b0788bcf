// Public surface of structured output: Grammar (GBNF text, or a JSON schema compiled to GBNF), checked when made,
// bound lazily to a vocabulary, and the per-generation matcher the sampler consults.
import { AglmError, invalidArgument } from '../errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { compileGrammar, type CompiledGrammar } from './compile.js';
import { parseGbnf, type GbnfAst } from './gbnf.js';
import { jsonSchemaToGbnf, type JsonSchemaToGbnfOptions } from './json-schema.js';
import { GrammarAutomaton, TokenTrie, type GrammarState } from './matcher.js';

export { jsonSchemaToGbnf, type JsonSchemaToGbnfOptions } from './json-schema.js';
export { gbnfLiteral } from './gbnf.js';

export interface GrammarOptions {
  /** The start rule. Default 'root'. */
  root?: string;
}

const tries = new WeakMap<Tokenizer, Map<string, TokenTrie>>();

/** The byte trie of a vocabulary with these end tokens (built once per tokenizer and end set). */
function trieFor(tokenizer: Tokenizer, endTokens: ReadonlySet<number>): TokenTrie {
  let byEnds = tries.get(tokenizer);
  if (!byEnds) tries.set(tokenizer, (byEnds = new Map()));
  const ends = new Set<number>(tokenizer.vocab.eog);
  for (const t of endTokens) ends.add(t);
  const key = [...ends].sort((a, b) => a - b).join(',');
  let trie = byEnds.get(key);
  if (!trie) {
    trie = new TokenTrie(tokenizer.vocab.size, (id) => tokenizer.tokenBytes(id), ends);
    byEnds.set(key, trie);
  }
  return trie;
}

/** A grammar the output of a generation is held to. Immutable; one Grammar serves any number of generations. */
export class Grammar {
  /** The GBNF text (for a JSON schema, the text it compiled to). */
  readonly gbnf: string;
  readonly root: string;
  readonly #ast: GbnfAst;
  readonly #automata = new WeakMap<TokenTrie, GrammarAutomaton>();
  #plain: GrammarAutomaton | undefined;

  /** Parses and checks GBNF text (llama.cpp's format); INVALID_GRAMMAR with the place when it is not valid. */
  constructor(gbnf: string, options: GrammarOptions = {}) {
    if (typeof gbnf !== 'string') throw invalidArgument('grammar', 'GBNF text (a string)', gbnf);
    const root = options.root ?? 'root';
    if (typeof root !== 'string') throw invalidArgument('root', 'a rule name', root);
    this.gbnf = gbnf;
    this.root = root;
    this.#ast = parseGbnf(gbnf);
    compileGrammar(this.#ast, root, () => 0); // structure checks now; tokens resolve against a vocabulary later
  }

  /** The grammar of JSON text valid under a JSON schema (the common subset; see jsonSchemaToGbnf). */
  static fromJsonSchema(schema: unknown, options?: JsonSchemaToGbnfOptions): Grammar {
    return new Grammar(jsonSchemaToGbnf(schema, options));
  }

  /** Whether `text` is a complete sentence of this grammar (token elements never match plain text). */
  test(text: string): boolean {
    if (typeof text !== 'string') throw invalidArgument('text', 'a string', text);
    if (!this.#plain) this.#plain = new GrammarAutomaton(compileGrammar(this.#ast, this.root, () => -1), new TokenTrie(0, () => new Uint8Array(0), []));
    const state = this.#plain.feedText(this.#plain.initial, text);
    return state !== undefined && this.#plain.isComplete(state);
  }

  /** @internal The automaton over a tokenizer's vocabulary, `endTokens` ending generation like EOS. */
  automaton(tokenizer: Tokenizer, endTokens: ReadonlySet<number> = new Set()): GrammarAutomaton {
    const trie = trieFor(tokenizer, endTokens);
    let a = this.#automata.get(trie);
    if (!a) {
      const compiled: CompiledGrammar = compileGrammar(this.#ast, this.root, (text) => {
        const ids = tokenizer.encode(text, { addSpecial: false, special: true });
        return ids.length === 1 ? ids[0] : undefined;
      });
      a = new GrammarAutomaton(compiled, trie);
      this.#automata.set(trie, a);
    }
    return a;
  }
}

/** One generation's position in a grammar: what the sampler asks, and accept() after each token. */
export class GrammarMatcher {
  readonly #a: GrammarAutomaton;
  #state: GrammarState;

  constructor(automaton: GrammarAutomaton) {
    this.#a = automaton;
    this.#state = automaton.initial;
  }

  allows(token: number): boolean {
    return this.#a.allows(this.#state, token);
  }

  mask(): Uint8Array {
    return this.#a.mask(this.#state);
  }

  accept(token: number): void {
    const next = this.#a.next(this.#state, token);
    if (!next) throw new AglmError('INVALID_GRAMMAR', `Token ${token} does not continue the grammar`);
    this.#state = next;
  }

  /** The text so far is a complete sentence of the grammar. */
  get complete(): boolean {
    return this.#a.isComplete(this.#state);
  }

  /** Complete, and nothing can follow: only end of generation is allowed next. */
  get finished(): boolean {
    return this.#a.isFinished(this.#state);
  }
}

/** What generate() accepts as a grammar: a Grammar, or GBNF text. */
export function toGrammar(name: string, value: unknown): Grammar {
  if (value instanceof Grammar) return value;
  if (typeof value === 'string') return new Grammar(value);
  throw invalidArgument(name, 'a Grammar or GBNF text', value);
}
