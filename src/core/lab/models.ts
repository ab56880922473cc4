/**
 * The models that ship with the lab, in public/models/: the default TIR model, and the
 * chain-of-thought model that is TIRGen's actor (docs/tirgen.md, "The chain-of-thought actor").
 * The browser fetches each folder from the app itself, Node reads it under public/.
 */
import { LabError } from '../errors';

export interface ShippedModel {
  name: string;
  /** The folder under public/ (and under the app's base URL). */
  folder: string;
  /** One line for a menu. */
  description: string;
}

export const SHIPPED_MODELS = [
  { name: 'thor-tiny', folder: 'models/thor-tiny', description: 'writes Python (default)' },
  { name: 'thor-tiny-cot', folder: 'models/thor-tiny-cot', description: "writes steps in words, TIRGen's actor" },
] as const satisfies readonly ShippedModel[];

export type ShippedModelName = (typeof SHIPPED_MODELS)[number]['name'];

/** The shipped model loaded when none is named. */
export const DEFAULT_SHIPPED_MODEL: ShippedModelName = 'thor-tiny';
/** The chain-of-thought model: TIRGen's actor. */
export const COT_SHIPPED_MODEL: ShippedModelName = 'thor-tiny-cot';

/** The files a shipped model folder holds (its pretraining notes, pretrain.json, are read apart). */
export const SHIPPED_MODEL_FILES = ['config.json', 'model.safetensors', 'char_tokenizer.json'] as const;

/** A shipped model by name (absent: the default); an unknown name is refused with the known ones. */
export function shippedModel(name: string = DEFAULT_SHIPPED_MODEL): (typeof SHIPPED_MODELS)[number] {
  const model = SHIPPED_MODELS.find((m) => m.name === name);
  if (!model)
    throw new LabError('model', 'no shipped model has this name', {
      field: 'source.name',
      expected: SHIPPED_MODELS.map((m) => m.name).join(' or '),
      found: String(name),
    });
  return model;
}
