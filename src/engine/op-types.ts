/**
 * Types of the native ops, derived from the op table (op-table.ts, generated from src/engine/native/op_table.h):
 * each op's arguments by name (what native.ts passes) and in call order (what the addon takes).
 */
import type { Ptr } from './backend.js';
import type { OP_TABLE } from './op-table.js';

export type Num = number;
export type Typed = Float32Array | Float64Array | Int32Array;

export type OpTable = typeof OP_TABLE;
/** The ops of the table. */
export type OpName = keyof OpTable;

/** What each kind of argument is in TypeScript: 'opt' buffers may be null. */
interface ArgValue {
  buf: Ptr;
  opt: Ptr | null;
  int: number;
  num: number;
  flag: boolean;
  host: Typed;
}

/** An op's arguments by name, typed by their kinds. */
export type OpArgs<O extends OpName> = { [E in OpTable[O][number] as E[0]]: ArgValue[E[1]] };

/** The values one argument of a kind becomes in the call: a buffer is its handle (-1 when absent) and offset. */
type Slots<K> = K extends 'buf' | 'opt'
  ? [handle: number, offset: number]
  : K extends 'int' | 'num'
    ? [number]
    : K extends 'flag'
      ? [boolean]
      : [Typed];
/** A table entry's arguments in call order. */
export type Positional<L> = L extends readonly [readonly [string, infer K], ...infer Rest]
  ? [...Slots<K>, ...Positional<Rest>]
  : [];

/** An op as the addon exports it. */
export type NativeOp<O extends OpName> = (...args: Positional<OpTable[O]>) => void;

/** For every op, its named arguments in call order. */
export type Marshallers = { [O in OpName]: (a: OpArgs<O>) => Positional<OpTable[O]> };
