#!/usr/bin/env python3
"""Writes the FHIR benchmark data set: PATIENTS patients with OBSERVATIONS
observations in total, as collection Bundles of 100 patients each, for
`ccri-mock --data DIR`.   usage: generate_load.py DIR [PATIENTS] [OBSERVATIONS]"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
patients = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
observations = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
out.mkdir(parents=True, exist_ok=True)
per_patient = observations // patients
codes = [("8867-4", "Heart rate"), ("29463-7", "Body weight"), ("8310-5", "Body temperature"), ("4548-4", "HbA1c")]
for chunk in range(0, patients, 100):
    entries = []
    for p in range(chunk, min(chunk + 100, patients)):
        entries.append({"resource": {"resourceType": "Patient", "id": f"p{p}", "gender": "female" if p % 2 else "male",
                                     "name": [{"family": f"Family{p}", "given": [f"Given{p}"]}], "birthDate": "1980-01-01"}})
        for o in range(per_patient):
            code, display = codes[o % len(codes)]
            entries.append({"resource": {
                "resourceType": "Observation", "id": f"p{p}-o{o}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                "subject": {"reference": f"Patient/p{p}"},
                "effectiveDateTime": f"20{10 + o % 15:02d}-{1 + o % 12:02d}-{1 + o % 28:02d}T10:00:00Z",
                "valueQuantity": {"value": 60 + o % 40, "unit": "1"}}})
    (out / f"load-{chunk:05d}.json").write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
print(f"wrote {patients} patients and {per_patient * patients} observations to {out}")
