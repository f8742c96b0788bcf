// How one non-byte token renders as text when decoding: '▁' becomes a space, special tokens show only on request.
import { SPACE_MARK } from './spm.js';
import { TokenType, type Vocab } from './vocab.js';

/** What SentencePiece shows for the unknown token. */
export const UNKNOWN_SURFACE = ' \u2047 ';

/** The text of a token that is not a byte token. With `special`, control, unknown and unused tokens show their piece. */
export function tokenText(vocab: Vocab, id: number, special: boolean): string {
  const piece = vocab.piece(id);
  switch (vocab.type(id)) {
    case TokenType.control:
    case TokenType.unused:
      return special ? piece : '';
    case TokenType.unknown:
      return special ? piece : UNKNOWN_SURFACE;
    default:
      return piece.replaceAll(SPACE_MARK, ' ');
  }
}
