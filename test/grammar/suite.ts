// The GBNF suite the grammar tests share: each grammar with sentences in and out of its language (written by hand
// from the grammar's meaning, not produced by either recognizer).
export interface GbnfCase {
  gbnf: string;
  accept: string[];
  reject: string[];
  /** Prompt for sampling tests on stories260K. */
  maxTokens?: number;
}

export const GBNF_SUITE: Record<string, GbnfCase> = {
  arithmetic: {
    gbnf: `# arithmetic with signs, decimals and parentheses
root ::= expr
expr ::= term (ws [-+*/] ws term){0,4}
term ::= num | "(" ws expr ws ")"
num  ::= "-"? [0-9]{1,4} ("." [0-9]{1,3})?
ws   ::= " "?
`,
    accept: ['1', '1+2', '(1 + 2) * -3.5', '((7))', '10/3-2*4', '-0.125'],
    reject: ['', '1+', '(1', '1..2', '12345', '1 +  2', '+1', '()', '1+2+3+4+5+6'],
    maxTokens: 48,
  },
  list: {
    gbnf: `root ::= ("- " item "\\n"){1,4}
item ::= [^\\n]{1,24}
`,
    accept: ['- milk\n', '- a\n- b c\n', '- x\n- y\n- z\n- w\n'],
    reject: ['- milk', '-milk\n', '- \n', '- a\n- b\n- c\n- d\n- e\n', '- ' + 'x'.repeat(25) + '\n'],
    maxTokens: 80,
  },
  brackets: {
    gbnf: `root ::= group{1,3}
group ::= "(" inner ")" | "[" inner "]" | "{" inner "}"
inner ::= group{0,2}
`,
    accept: ['()', '[]{}', '({[]})', '(()())', '{}[]()'],
    reject: ['(', '(]', '([)]', '', '(()()())', '()()()()'],
    maxTokens: 64,
  },
  unicode: {
    gbnf: `root ::= [ぁ-ゟ]{1,3} " " [\\u0391-\\u03A9]{2,4} ("!" | [\\U0001F600-\\U0001F64F])? [\\x41-\\x43]
`,
    accept: ['あ ΑΒC', 'ぁぃぅ ΩΩΩΩ😀A', 'ゟ ΓΔ!B'],
    reject: ['a ΑΒC', 'あ ΑC', 'あΑΒC', 'あ ΑΒΓΔΕC', 'あ ΑΒ😀😀A', 'あ ΑΒD'],
    maxTokens: 40,
  },
  repetition: {
    gbnf: `root ::= "a"{2} "b"{1,3} "c"{2,} "d"{0,2} ("xy"){3} [0-9]? "."
`,
    accept: ['aabccxyxyxy.', 'aabbbccccddxyxyxy7.', 'aabccdxyxyxy0.'],
    reject: ['abccxyxyxy.', 'aabbbbccxyxyxy.', 'aabcxyxyxy.', 'aabccdddxyxyxy.', 'aabccxyxy.', 'aabccxyxyxy12.'],
    maxTokens: 48,
  },
  'phone-agent': {
    gbnf: `# an action of a phone agent (AutoGLM's do/finish form), coordinates 0-999
root   ::= tap | swipe | type | back | finish
tap    ::= "do(action=\\"Tap\\", element=" point ")"
swipe  ::= "do(action=\\"Swipe\\", start=" point ", end=" point ")"
type   ::= "do(action=\\"Type\\", text=\\"" text "\\")"
back   ::= "do(action=\\"Back\\")"
finish ::= "finish(message=\\"" text "\\")"
point  ::= "[" coord "," coord "]"
coord  ::= [0-9] | [1-9] [0-9]{1,2}
text   ::= [^"\\\\\\n]{0,40}
`,
    accept: ['do(action="Tap", element=[500,120])', 'do(action="Back")', 'do(action="Swipe", start=[0,0], end=[999,999])', 'finish(message="done")', 'do(action="Type", text="")'],
    reject: ['do(action="Tap", element=[500,1200])', 'do(action="Tap", element=[05,1])', 'do(action="Jump")', 'finish(message="a"b")', 'do(action="Tap",element=[1,1])'],
    maxTokens: 64,
  },
  'any-and-negation': {
    gbnf: `root ::= . [^a-z] .{2} ("|" [^|]*)? ";"
`,
    accept: ['aB12;', 'zZzz;', '€1ab|xyz;', '  ;;;', '....|;'],
    reject: ['ab12;', 'aB1;', 'aB12', 'aB12|a|b;'],
    maxTokens: 40,
  },
  comments: {
    gbnf: `# comments, newlines inside groups and after |, CRLF line ends\r
root ::= ( # a group spanning lines\r
    "x"\r
  | "y" ) "-" word |   # a comment after the bar\r
  "z"\r
word ::= [a-c]{1,8}\r
`,
    accept: ['x-a', 'y-abc', 'z'],
    reject: ['x-', 'xy-a', 'z-a', 'x-d'],
    maxTokens: 24,
  },
};
