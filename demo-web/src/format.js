// Display helpers for FHIR data types.
export const NHS_NUMBER = "https://fhir.nhs.uk/Id/nhs-number";

export function humanName(patient) {
  const name = patient?.name?.[0];
  if (!name) return "(no name)";
  return name.text ?? [...(name.given ?? []), name.family].filter(Boolean).join(" ");
}

/** 9876543210 → 987 654 3210, as NHS systems show it. */
export function nhsNumber(patient) {
  const value = patient?.identifier?.find((i) => i.system === NHS_NUMBER)?.value ?? "";
  return value.replace(/^(\d{3})(\d{3})(\d{4})$/, "$1 $2 $3");
}

/** 1998-03-19 → 19-Mar-1998 */
export function date(value) {
  if (!value) return "";
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime())) return value;
  const day = String(parsed.getUTCDate()).padStart(2, "0");
  const month = parsed.toLocaleString("en-GB", { month: "short", timeZone: "UTC" });
  return `${day}-${month}-${parsed.getUTCFullYear()}`;
}

export function concept(codeableConcept) {
  return codeableConcept?.text ?? codeableConcept?.coding?.[0]?.display ?? codeableConcept?.coding?.[0]?.code ?? "";
}

export function quantity(observation) {
  const q = observation.valueQuantity;
  if (q) return `${q.value} ${q.unit ?? ""}`.trim();
  return observation.valueString ?? concept(observation.valueCodeableConcept);
}

export function duration(seconds) {
  if (seconds <= 0) return "expired";
  const m = Math.floor(seconds / 60);
  return m > 0 ? `${m} min ${seconds % 60} s` : `${seconds} s`;
}
