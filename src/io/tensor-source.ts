/**
 * Anything that hands out float32 tensors by Hugging Face name: one safetensors file, or a Hugging Face
 * checkpoint folder (single or sharded, see hf-checkpoint.ts). Model code loads weights through this interface
 * and never learns which file format they came from.
 *
 * A source holds its files open until `close()`: every loader closes it when done, or a deleted (pruned)
 * checkpoint would stay allocated on disk for as long as the process runs.
 */
import { readSafetensors } from './safetensors.js';

export interface TensorSource {
  has(name: string): boolean;
  shape(name: string): number[];
  read(name: string): Float32Array;
  names(): string[];
  /** Releases the open files (idempotent; reads after it fail). */
  close(): void;
}

/** One safetensors file as a TensorSource (any float dtype, converted to float32 on read). */
export function safetensorsSource(path: string): TensorSource {
  const st = readSafetensors(path);
  return {
    has: (name) => st.has(name),
    shape: (name) => st.info(name).shape,
    read: (name) => st.toFloat32(name),
    names: () => st.names(),
    close: () => st.close(),
  };
}

/** Runs `use` on a source and closes it afterwards, whatever happens. */
export function withSource<T>(src: TensorSource, use: (src: TensorSource) => T): T {
  try {
    return use(src);
  } finally {
    src.close();
  }
}
