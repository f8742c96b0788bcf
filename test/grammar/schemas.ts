// Twenty JSON schemas for the structured-output tests: nested objects, arrays with bounds, enums, consts, optional
// fields, anyOf, $defs with recursion, formats, numeric bounds, maps, tuples.
export const SCHEMAS: Record<string, object> = {
  person: {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer', minimum: 0, maximum: 120 }, email: { type: 'string', format: 'email' } },
    required: ['name', 'age'],
  },
  address: {
    type: 'object',
    properties: {
      user: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 16 },
          address: { type: 'object', properties: { street: { type: 'string', maxLength: 24 }, city: { type: 'string', maxLength: 16 }, zip: { type: 'string', minLength: 5, maxLength: 5 } }, required: ['city', 'zip'] },
        },
        required: ['name', 'address'],
      },
    },
    required: ['user'],
  },
  'list-of-objects': {
    type: 'object',
    properties: { items: { type: 'array', minItems: 1, maxItems: 3, items: { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: 9999 }, label: { type: 'string', maxLength: 10 } }, required: ['id'] } } },
    required: ['items'],
  },
  status: {
    type: 'object',
    properties: { status: { enum: ['ok', 'error', 'pending'] }, code: { type: 'integer', minimum: 100, maximum: 599 } },
    required: ['status', 'code'],
  },
  'all-optional': {
    type: 'object',
    properties: { a: { type: 'boolean' }, b: { type: 'integer', maximum: 10, minimum: -10 }, c: { type: 'string', maxLength: 6 }, d: { type: 'null' } },
  },
  'any-of-scalars': {
    type: 'object',
    properties: { value: { anyOf: [{ type: 'string', maxLength: 8 }, { type: 'number', minimum: -1000, maximum: 1000 }, { type: 'null' }] } },
    required: ['value'],
  },
  shapes: {
    type: 'object',
    properties: {
      shape: {
        anyOf: [
          { type: 'object', properties: { kind: { const: 'circle' }, radius: { type: 'number', exclusiveMinimum: 0, maximum: 100 } }, required: ['kind', 'radius'] },
          { type: 'object', properties: { kind: { const: 'rect' }, w: { type: 'integer', minimum: 1, maximum: 500 }, h: { type: 'integer', minimum: 1, maximum: 500 } }, required: ['kind', 'w', 'h'] },
        ],
      },
    },
    required: ['shape'],
  },
  tree: {
    $defs: {
      node: {
        type: 'object',
        properties: { value: { type: 'integer', minimum: 0, maximum: 99 }, children: { type: 'array', maxItems: 2, items: { $ref: '#/$defs/node' } } },
        required: ['value'],
      },
    },
    $ref: '#/$defs/node',
  },
  'date-time': {
    type: 'object',
    properties: { date: { type: 'string', format: 'date' }, time: { type: 'string', format: 'time' }, at: { type: 'string', format: 'date-time' } },
    required: ['date', 'time', 'at'],
  },
  uuid: { type: 'object', properties: { id: { type: 'string', format: 'uuid' }, parent: { type: 'string', format: 'uuid' } }, required: ['id'] },
  tuple: { type: 'array', prefixItems: [{ type: 'string', maxLength: 8 }, { type: 'integer' }, { type: 'boolean' }], items: false, minItems: 3 },
  'bool-null': { type: 'object', properties: { flag: { type: 'boolean' }, nothing: { type: 'null' } }, required: ['flag', 'nothing'] },
  consts: { type: 'object', properties: { version: { const: 2 }, kind: { const: 'event' }, tags: { const: ['a', 'b'] } }, required: ['version', 'kind', 'tags'] },
  'number-bounds': {
    type: 'object',
    properties: { temperature: { type: 'number', minimum: -50, maximum: 50 }, ratio: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, big: { type: 'integer', minimum: 1000000 } },
    required: ['temperature', 'ratio', 'big'],
  },
  map: { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 9 }, propertyNames: { maxLength: 10 }, maxProperties: 3 },
  'phone-action': {
    type: 'object',
    properties: {
      action: { enum: ['Tap', 'Swipe', 'Type', 'Back', 'Home', 'Wait'] },
      element: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 999 }, minItems: 2, maxItems: 2 },
      text: { type: 'string', maxLength: 30 },
    },
    required: ['action'],
  },
  'string-array': { type: 'object', properties: { words: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 2, maxItems: 4 } }, required: ['words'] },
  'all-of': {
    allOf: [
      { type: 'object', properties: { a: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['a'] },
      { properties: { b: { enum: ['x', 'y'] } }, required: ['b'] },
    ],
  },
  'type-list': { type: 'object', properties: { v: { type: ['string', 'integer', 'null'], maxLength: 6 } }, required: ['v'] },
  deep: {
    type: 'object',
    properties: { a: { type: 'object', properties: { b: { type: 'object', properties: { c: { type: 'object', properties: { d: { type: 'integer' } }, required: ['d'] } }, required: ['c'] } }, required: ['b'] } },
    required: ['a'],
  },
};
