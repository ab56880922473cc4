/**
 * verl's data files: Parquet with nested columns written as pyarrow writes them from Python dicts
 * and lists (docs/verl.md#the-data): every field optional, `prompt` a three-level LIST of structs
 * (`prompt.list.element.{role, content}`), `reward_model` and `extra_info` structs, strings as UTF8,
 * integers as INT64. hyparquet-writer writes the nested levels from this explicit schema.
 */
import type { SchemaElement } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { VerlRow } from './dataset';

type Element = SchemaElement;

const text = (name: string): Element => ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
const int = (name: string): Element => ({ name, type: 'INT64', repetition_type: 'OPTIONAL' });
const bool = (name: string): Element => ({ name, type: 'BOOLEAN', repetition_type: 'OPTIONAL' });
const struct = (name: string, children: Element[][]): Element[] => [{ name, repetition_type: 'OPTIONAL', num_children: children.length }, ...children.flat()];

/** The schema, depth first, as Parquet's footer lists it. */
export const VERL_SCHEMA: Element[] = [
  { name: 'schema', repetition_type: 'REQUIRED', num_children: 5 },
  text('data_source'),
  { name: 'prompt', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  ...struct('element', [[text('role')], [text('content')]]),
  text('ability'),
  ...struct('reward_model', [[text('style')], [text('ground_truth')]]),
  ...struct('extra_info', [
    [text('split')],
    [int('index')],
    [text('id')],
    [text('question')],
    [text('answer')],
    struct('reward', [[text('scheme')], [bool('code_failure_penalty')], [bool('repetition_penalty')], [int('repetition_ngram')], [int('repetition_max_count')]]),
  ]),
];

/** The rows as one Parquet file (snappy, one row group per 1000 rows at first). */
export function verlParquet(rows: readonly VerlRow[]): ArrayBuffer {
  const extra = rows.map((r) => ({
    ...r.extra_info,
    index: BigInt(r.extra_info.index),
    reward: { ...r.extra_info.reward, repetition_ngram: BigInt(r.extra_info.reward.repetition_ngram), repetition_max_count: BigInt(r.extra_info.reward.repetition_max_count) },
  }));
  return parquetWriteBuffer({
    columnData: [
      { name: 'data_source', data: rows.map((r) => r.data_source) },
      { name: 'prompt', data: rows.map((r) => r.prompt) },
      { name: 'ability', data: rows.map((r) => r.ability) },
      { name: 'reward_model', data: rows.map((r) => r.reward_model) },
      { name: 'extra_info', data: extra },
    ],
    schema: VERL_SCHEMA,
    createdBy: 'thor-lab export-verl',
  });
}
