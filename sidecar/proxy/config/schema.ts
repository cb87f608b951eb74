/**
 * Checks a plain JSON/YAML value against a message of `proto/weft/v1/config.proto` (proto3 JSON
 * mapping: lowerCamelCase field names, enums by name, 64-bit values not used). Unknown fields,
 * wrong types, unknown enum names, out-of-range integers and two members of one oneof are all
 * errors; each error names the field path, e.g. `listeners[0].port: expected an integer 0..4294967295`.
 *
 * The proto file is the single source of truth: the loaded schema is built from it at start-up.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { projectRoot } from './root.ts';

let root: protobuf.Root | undefined;

/** The parsed proto schema (loaded once). Throws when the proto file is missing or invalid. */
export function configSchema(): protobuf.Root {
  if (root === undefined) {
    root = protobuf.loadSync(join(projectRoot(), 'proto', 'weft', 'v1', 'config.proto'));
    root.resolveAll();
  }
  return root;
}

const INT_RANGE: Record<string, [number, number]> = {
  uint32: [0, 4294967295],
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  fixed32: [0, 4294967295],
};

function snakeToCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function checkScalar(field: protobuf.Field, value: unknown, path: string, errors: string[]): void {
  if (field.resolvedType instanceof protobuf.Enum) {
    if (typeof value !== 'string' || !(value in field.resolvedType.values)) {
      const names = Object.keys(field.resolvedType.values).filter((n) => !n.endsWith('_UNSPECIFIED'));
      errors.push(`${path}: expected one of ${names.join(', ')}, got ${JSON.stringify(value)}`);
    }
    return;
  }
  if (field.resolvedType instanceof protobuf.Type) {
    checkMessage(field.resolvedType, value, path, errors);
    return;
  }
  const range = INT_RANGE[field.type];
  if (range !== undefined) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < range[0] || value > range[1]) {
      errors.push(`${path}: expected an integer ${range[0]}..${range[1]}, got ${JSON.stringify(value)}`);
    }
  } else if (field.type === 'double' || field.type === 'float') {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      errors.push(`${path}: expected a number, got ${JSON.stringify(value)}`);
    }
  } else if (field.type === 'string') {
    if (typeof value !== 'string') errors.push(`${path}: expected a string, got ${JSON.stringify(value)}`);
  } else if (field.type === 'bool') {
    if (typeof value !== 'boolean')
      errors.push(`${path}: expected true or false, got ${JSON.stringify(value)}`);
  } else {
    errors.push(`${path}: field type ${field.type} is not supported in JSON config`);
  }
}

function checkMessage(type: protobuf.Type, value: unknown, path: string, errors: string[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    errors.push(`${path || type.name}: expected an object (${type.name})`);
    return;
  }
  const prefix = path === '' ? '' : `${path}.`;
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key];
    if (field === undefined) {
      const camel = snakeToCamel(key);
      const hint = camel !== key && type.fields[camel] !== undefined ? ` (did you mean "${camel}"?)` : '';
      errors.push(`${prefix}${key}: unknown field of ${type.name}${hint}`);
      continue;
    }
    if (v === undefined || v === null) continue;
    if (field instanceof protobuf.MapField) {
      if (typeof v !== 'object' || Array.isArray(v)) {
        errors.push(`${prefix}${key}: expected a map of ${field.type}`);
        continue;
      }
      for (const [mk, mv] of Object.entries(v as Record<string, unknown>)) {
        checkScalar(field, mv, `${prefix}${key}.${mk}`, errors);
      }
    } else if (field.repeated) {
      if (!Array.isArray(v)) {
        errors.push(`${prefix}${key}: expected a list`);
        continue;
      }
      v.forEach((item, i) => {
        checkScalar(field, item, `${prefix}${key}[${i}]`, errors);
      });
    } else {
      checkScalar(field, v, `${prefix}${key}`, errors);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.fieldsArray.filter((f) => (value as Record<string, unknown>)[f.name] != null);
    if (set.length > 1) {
      errors.push(`${path || type.name}: only one of ${set.map((f) => f.name).join(', ')} may be set`);
    }
  }
}

/**
 * Checks `value` against message `typeName` (e.g. `weft.v1.Bootstrap`).
 * Returns the list of errors; empty when the value conforms.
 */
export function checkAgainstProto(typeName: string, value: unknown): string[] {
  const errors: string[] = [];
  checkMessage(configSchema().lookupType(typeName), value, '', errors);
  return errors;
}
