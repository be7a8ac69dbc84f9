#!/usr/bin/env python3
"""Writes uk.json, the built-in data set of ccri-mock: a small, internally
consistent English general practice population (FHIR R4, UK identifiers).

Deterministic: the same script always writes the same file. Run it after editing:
    python3 mock-server/src/seed/generate.py
Codes are LOINC for observations and SNOMED CT for the rest; the people, places
and NHS numbers (valid modulus-11 check digits) are invented.
"""
import json
import random
from pathlib import Path

rng = random.Random(20261128)
NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS = "https://fhir.nhs.uk/Id/sds-user-id"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
resources = []


def add(resource):
    resources.append(resource)
    return resource


def nhs_number(prefix9):
    total = sum(int(d) * (10 - i) for i, d in enumerate(prefix9))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return None if check == 10 else prefix9 + str(check)


def concept(system, code, display):
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


practices = [
    ("C81010", "The Moir Medical Centre", ["Regent Street"], "Long Eaton", "NG10 1QQ"),
    ("C84001", "Sherwood Rise Medical Centre", ["31 Nottingham Road"], "Nottingham", "NG7 7AD"),
    ("B82005", "Priory Medical Group", ["Cornlands Road"], "York", "YO24 3WX"),
]
for ods, name, line, city, postcode in practices:
    add({"resourceType": "Organization", "id": ods, "identifier": [{"system": ODS, "value": ods}],
         "active": True, "type": [concept("https://fhir.nhs.uk/CodeSystem/organisation-role", "76", "GP practice")],
         "name": name, "telecom": [{"system": "phone", "value": "0115 " + str(rng.randint(4000000, 9999999))}],
         "address": [{"line": line, "city": city, "postalCode": postcode, "country": "GB"}]})
add({"resourceType": "Organization", "id": "RX1", "identifier": [{"system": ODS, "value": "RX1"}], "active": True,
     "name": "Nottingham University Hospitals NHS Trust",
     "address": [{"line": ["Derby Road"], "city": "Nottingham", "postalCode": "NG7 2UH", "country": "GB"}]})
for loc_id, name, org, postcode in [("loc-moir", "The Moir Medical Centre, consulting rooms", "C81010", "NG10 1QQ"),
                                    ("loc-qmc", "Queen's Medical Centre", "RX1", "NG7 2UH")]:
    add({"resourceType": "Location", "id": loc_id, "status": "active", "name": name,
         "identifier": [{"system": "https://fhir.nhs.uk/Id/ods-site-code", "value": loc_id.upper()}],
         "address": {"postalCode": postcode, "country": "GB"},
         "managingOrganization": {"reference": f"Organization/{org}"}})

gps = [("2", "G8133438", "Harrison", "Jane", "female", "C81010"),
       ("gp-ahmed", "G8650149", "Ahmed", "Imran", "male", "C81010"),
       ("gp-okafor", "G8703241", "Okafor", "Chiamaka", "female", "C84001"),
       ("gp-wilson", "G8224516", "Wilson", "Thomas", "male", "B82005")]
for pid, sds, family, given, gender, org in gps:
    add({"resourceType": "Practitioner", "id": pid, "identifier": [{"system": SDS, "value": sds}], "active": True,
         "name": [{"use": "usual", "family": family, "given": [given], "prefix": ["Dr"]}], "gender": gender,
         "address": [{"postalCode": next(p[4] for p in practices if p[0] == org)}]})
    add({"resourceType": "PractitionerRole", "id": f"role-{pid}", "active": True,
         "practitioner": {"reference": f"Practitioner/{pid}"}, "organization": {"reference": f"Organization/{org}"},
         "code": [concept(SCT, "62247001", "General practitioner")]})

# id, prefix, given, family, gender, birthDate, postcode, street, city, practitioner, conditions, allergy
people = [
    ("1", "Miss", "Bernie", "Kanfeld", "female", "1998-03-19", "S11 9BU", "10 Field Jardin", "Sheffield", "2",
     ["195967001"], "91936005"),
    ("3", "Mr", "Kevin", "Jones", "male", "1961-07-02", "NG10 3AF", "4 Tamworth Road", "Long Eaton", "2",
     ["38341003", "44054006"], None),
    ("4", "Mrs", "Zoë", "Adebayo", "female", "1974-11-23", "NG7 1FP", "22 Alfreton Road", "Nottingham", "gp-okafor",
     ["40930008"], "91935009"),
    ("5", "Mr", "Arjun", "Patel", "male", "1983-05-14", "NG7 6HT", "8 Hartley Road", "Nottingham", "gp-okafor",
     ["44054006"], None),
    ("6", "Ms", "Siobhan", "O'Connor", "female", "1990-01-30", "YO24 1AB", "51 Tadcaster Road", "York", "gp-wilson",
     ["35489007"], "300916003"),
    ("7", "Mr", "Dylan", "Evans", "male", "1952-09-08", "YO24 4DQ", "3 Moorcroft Road", "York", "gp-wilson",
     ["49436004", "38341003"], None),
    ("8", "Mrs", "Margaret", "Thompson", "female", "1940-04-17", "NG10 4LH", "17 Derby Road", "Long Eaton", "gp-ahmed",
     ["396275006", "433144002"], "91936005"),
    ("9", "Mr", "Mohammed", "Hussain", "male", "2001-12-02", "NG7 3DL", "66 Radford Road", "Nottingham", "gp-okafor",
     [], None),
    ("10", "Miss", "Chloé", "Dubois", "female", "2012-06-21", "NG10 2JU", "9 Cranmer Street", "Long Eaton", "gp-ahmed",
     ["195967001"], "91935009"),
    ("11", "Mr", "Oliver", "Smith", "male", "1968-02-11", "YO24 2SP", "120 Acomb Road", "York", "gp-wilson",
     ["38341003"], None),
]
conditions = {
    "195967001": "Asthma", "38341003": "Hypertensive disorder", "44054006": "Type 2 diabetes mellitus",
    "40930008": "Hypothyroidism", "35489007": "Depressive disorder", "49436004": "Atrial fibrillation",
    "396275006": "Osteoarthritis", "433144002": "Chronic kidney disease stage 3",
}
medicines = {  # condition -> (SNOMED/dm+d code, name, dosage)
    "195967001": ("320135009", "Salbutamol 100micrograms/dose inhaler", "Two puffs when required"),
    "38341003": ("319283006", "Amlodipine 5mg tablets", "One tablet once a day"),
    "44054006": ("325278007", "Metformin 500mg tablets", "One tablet twice a day with food"),
    "40930008": ("315250003", "Levothyroxine sodium 50microgram tablets", "One tablet each morning"),
    "35489007": ("321988009", "Sertraline 50mg tablets", "One tablet once a day"),
    "49436004": ("1145423002", "Apixaban 5mg tablets", "One tablet twice a day"),
    "396275006": ("322236009", "Paracetamol 500mg tablets", "Two tablets up to four times a day"),
    "433144002": ("318135006", "Ramipril 2.5mg capsules", "One capsule once a day"),
}
allergies = {"91936005": "Allergy to penicillin", "91935009": "Allergy to peanut", "300916003": "Latex allergy"}
vitals = [  # LOINC, display, unit, UCUM, low, high
    ("8867-4", "Heart rate", "beats/minute", "/min", 58, 92),
    ("29463-7", "Body weight", "kg", "kg", 52, 96),
    ("8310-5", "Body temperature", "Cel", "Cel", 36.2, 37.4),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%", 94, 99),
]
labs = [
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "mmol/mol", "mmol/mol", 36, 64),
    ("2093-3", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", "mmol/L", 3.8, 6.9),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", "g/L", 118, 162),
    ("2160-0", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", "umol/L", 55, 130),
]


def observation(oid, patient, encounter, when, code, display, unit, ucum, value, category, performer):
    return add({"resourceType": "Observation", "id": oid, "status": "final",
                "category": [concept(OBS_CAT, category, "Vital Signs" if category == "vital-signs" else "Laboratory")],
                "code": concept(LOINC, code, display), "subject": {"reference": f"Patient/{patient}"},
                "encounter": {"reference": f"Encounter/{encounter}"}, "effectiveDateTime": when,
                "performer": [{"reference": f"Practitioner/{performer}"}],
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum}})


for (pid, prefix, given, family, gender, born, postcode, street, city, gp, conds, allergy) in people:
    org = next(g[5] for g in gps if g[0] == gp)
    number = "9876543210" if pid == "1" else None
    while number is None:
        number = nhs_number("943476" + str(rng.randint(100, 999)))
    add({"resourceType": "Patient", "id": pid, "identifier": [{"system": NHS, "value": number}], "active": True,
         "name": [{"use": "official", "family": family, "given": [given], "prefix": [prefix]}],
         "telecom": [{"system": "phone", "value": "07700 9" + str(rng.randint(10000, 99999)), "use": "mobile"},
                     {"system": "email", "value": f"{given.lower()}.{family.lower().replace(chr(39), '')}@example.nhs.uk"}],
         "gender": gender, "birthDate": born,
         "address": [{"use": "home", "line": [street], "city": city, "postalCode": postcode, "country": "GB"}],
         "generalPractitioner": [{"reference": f"Practitioner/{gp}"}],
         "managingOrganization": {"reference": f"Organization/{org}"}})
    # Bernie, CCRI's example patient, has enough history to page through.
    visits = 9 if pid == "1" else rng.randint(2, 3)
    obs = 0
    for v in range(visits):
        year = 2023 + (v * 4) // 12 if pid == "1" else 2024
        month = (v * 4) % 12 + 1 if pid == "1" else rng.randint(1, 11)
        day = rng.randint(1, 27)
        start = f"{year}-{month:02d}-{day:02d}T{rng.randint(8, 16):02d}:{rng.choice(['00', '15', '30', '45'])}:00Z"
        eid = f"enc-{pid}-{v + 1}" if pid != "1" or v else "enc-1"
        add({"resourceType": "Encounter", "id": eid, "status": "finished",
             "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
             "type": [concept(SCT, "185345009", "Encounter for symptom")],
             "subject": {"reference": f"Patient/{pid}"},
             "participant": [{"individual": {"reference": f"Practitioner/{gp}"}}],
             "period": {"start": start, "end": start[:14] + "59:00Z"},
             "location": [{"location": {"reference": "Location/loc-moir"}}] if org == "C81010" else [],
             "serviceProvider": {"reference": f"Organization/{org}"}})
        for code, display, unit, ucum, low, high in vitals:
            obs += 1
            value = round(rng.uniform(low, high), 1 if isinstance(low, float) else 0)
            observation(f"obs-{pid}-{obs}", pid, eid, start, code, display, unit, ucum,
                        value if isinstance(low, float) else int(value), "vital-signs", gp)
        if v % 2 == 0:
            code, display, unit, ucum, low, high = labs[(v // 2) % len(labs)]
            obs += 1
            value = round(rng.uniform(low, high), 1 if isinstance(low, float) else 0)
            observation(f"obs-{pid}-{obs}", pid, eid, start, code, display, unit, ucum,
                        value if isinstance(low, float) else int(value), "laboratory", gp)
    for i, code in enumerate(conds):
        onset = f"{max(int(born[:4]) + 12, 2005 + i * 3)}-0{i + 3}-1{i}"
        add({"resourceType": "Condition", "id": f"cond-{pid}-{i + 1}",
             "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
             "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
             "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")],
             "code": concept(SCT, code, conditions[code]), "subject": {"reference": f"Patient/{pid}"},
             "onsetDateTime": onset, "recordedDate": onset, "asserter": {"reference": f"Practitioner/{gp}"}})
        med_code, med_name, dosage = medicines[code]
        add({"resourceType": "MedicationRequest", "id": f"medreq-{pid}-{i + 1}", "status": "active", "intent": "order",
             "medicationCodeableConcept": concept(SCT, med_code, med_name), "subject": {"reference": f"Patient/{pid}"},
             "authoredOn": f"2024-0{i + 2}-0{i + 4}", "requester": {"reference": f"Practitioner/{gp}"},
             "reasonReference": [{"reference": f"Condition/cond-{pid}-{i + 1}"}],
             "dosageInstruction": [{"text": dosage}]})
        add({"resourceType": "MedicationStatement", "id": f"medstmt-{pid}-{i + 1}", "status": "active",
             "medicationCodeableConcept": concept(SCT, med_code, med_name), "subject": {"reference": f"Patient/{pid}"},
             "effectivePeriod": {"start": f"2024-0{i + 2}-0{i + 4}"},
             "basedOn": [{"reference": f"MedicationRequest/medreq-{pid}-{i + 1}"}], "dosage": [{"text": dosage}]})
    add({"resourceType": "AllergyIntolerance", "id": f"allergy-{pid}",
         "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active", "Active"),
         "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed", "Confirmed"),
         "code": concept(SCT, allergy, allergies[allergy]) if allergy else concept(SCT, "716186003", "No known allergy"),
         "patient": {"reference": f"Patient/{pid}"}, "recordedDate": "2020-05-11",
         "recorder": {"reference": f"Practitioner/{gp}"}})
    for i, (year, code, name) in enumerate([(2023, "1181000221105", "Influenza vaccine"),
                                            (2024, "1324681000000101", "COVID-19 vaccine")]):
        add({"resourceType": "Immunization", "id": f"imm-{pid}-{i + 1}", "status": "completed",
             "vaccineCode": concept(SCT, code, name), "patient": {"reference": f"Patient/{pid}"},
             "occurrenceDateTime": f"{year}-10-{10 + i:02d}", "primarySource": True,
             "performer": [{"actor": {"reference": f"Practitioner/{gp}"}}]})

add({"resourceType": "Procedure", "id": "proc-3-1", "status": "completed",
     "code": concept(SCT, "252779009", "Single photon emission computed tomography of heart"),
     "subject": {"reference": "Patient/3"}, "performedDateTime": "2024-02-14T10:00:00Z"})
add({"resourceType": "Procedure", "id": "proc-8-1", "status": "completed", "code": concept(SCT, "179344006", "Total knee replacement"),
     "subject": {"reference": "Patient/8"}, "performedPeriod": {"start": "2022-09-05T09:00:00Z", "end": "2022-09-05T11:30:00Z"}})
add({"resourceType": "DocumentReference", "id": "doc-8-1", "status": "current",
     "type": concept(SCT, "823701000000103", "Discharge letter"), "subject": {"reference": "Patient/8"},
     "date": "2022-09-08T12:00:00Z", "custodian": {"reference": "Organization/RX1"},
     "content": [{"attachment": {"contentType": "text/plain", "title": "Discharge summary",
                                 "data": "RGlzY2hhcmdlZCBob21lIGFmdGVyIGtuZWUgcmVwbGFjZW1lbnQu"}}],
     "context": {"period": {"start": "2022-09-05", "end": "2022-09-08"}}})
add({"resourceType": "Flag", "id": "flag-8-1", "status": "active", "code": concept(SCT, "105529008", "Lives alone"),
     "subject": {"reference": "Patient/8"}, "period": {"start": "2021-01-01"}})
add({"resourceType": "Medication", "id": "med-amlodipine", "code": concept(SCT, "319283006", "Amlodipine 5mg tablets")})

# What UK patient apps show beyond the GP record: lab reports with their results,
# care plans with goals, letters, and the next appointment. Written after the
# record above and with no random draws, so that record stays as it was.
LAB_REPORT = concept(LOINC, "11502-2", "Laboratory report")
for (pid, _, given, family, _, _, _, _, _, gp, conds, _) in people:
    labs_of = [r for r in resources if r["resourceType"] == "Observation" and r["subject"]["reference"] == f"Patient/{pid}"
               and r["category"][0]["coding"][0]["code"] == "laboratory"]
    for n, lab in enumerate(labs_of, start=1):
        add({"resourceType": "DiagnosticReport", "id": f"report-{pid}-{n}", "status": "final",
             "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
             "code": LAB_REPORT, "subject": {"reference": f"Patient/{pid}"}, "encounter": lab["encounter"],
             "effectiveDateTime": lab["effectiveDateTime"], "issued": lab["effectiveDateTime"][:11] + "17:00:00Z",
             "performer": [{"reference": "Organization/RX1", "display": "Nottingham University Hospitals pathology"}],
             "result": [{"reference": f"Observation/{lab['id']}"}],
             "conclusion": f"{lab['code']['text']}: {lab['valueQuantity']['value']} {lab['valueQuantity']['unit']}"})
    if conds:
        goal_ids = []
        for i, code in enumerate(conds):
            goal_ids.append(f"goal-{pid}-{i + 1}")
            add({"resourceType": "Goal", "id": goal_ids[-1], "lifecycleStatus": "active",
                 "description": {"text": f"Keep {conditions[code].lower()} under control"},
                 "subject": {"reference": f"Patient/{pid}"}, "startDate": "2024-04-01",
                 "addresses": [{"reference": f"Condition/cond-{pid}-{i + 1}"}],
                 "expressedBy": {"reference": f"Practitioner/{gp}"}})
        add({"resourceType": "CarePlan", "id": f"careplan-{pid}", "status": "active", "intent": "plan",
             "category": [concept(SCT, "734163000", "Care plan")],
             "title": "Long-term conditions care plan", "subject": {"reference": f"Patient/{pid}"},
             "period": {"start": "2024-04-01"}, "author": {"reference": f"Practitioner/{gp}"},
             "addresses": [{"reference": f"Condition/cond-{pid}-{i + 1}"} for i in range(len(conds))],
             "goal": [{"reference": f"Goal/{g}"} for g in goal_ids],
             "activity": [{"detail": {"status": "scheduled", "description": "Annual review with the practice nurse",
                                      "scheduledPeriod": {"start": "2025-04-01", "end": "2025-04-30"}}}]})
    add({"resourceType": "Appointment", "id": f"appt-{pid}", "status": "booked",
         "serviceType": [concept(SCT, "394814009", "General practice")],
         "description": "Annual review", "start": "2027-01-12T09:30:00Z", "end": "2027-01-12T09:45:00Z",
         "participant": [{"actor": {"reference": f"Patient/{pid}", "display": f"{given} {family}"}, "status": "accepted"},
                         {"actor": {"reference": f"Practitioner/{gp}"}, "status": "accepted"}]})
add({"resourceType": "DocumentReference", "id": "doc-1-1", "status": "current",
     "type": concept(SCT, "371531000", "Report of clinical encounter"), "subject": {"reference": "Patient/1"},
     "date": "2025-05-20T15:00:00Z", "author": [{"reference": "Practitioner/2"}],
     "content": [{"attachment": {"contentType": "text/plain", "title": "Asthma review letter",
                                 "data": "QXN0aG1hIHdlbGwgY29udHJvbGxlZDsgY29udGludWUgc2FsYnV0YW1vbCBhcyBuZWVkZWQu"}}]})

bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
out = Path(__file__).with_name("uk.json")
out.write_text(json.dumps(bundle, indent=1, ensure_ascii=False) + "\n")
print(f"wrote {len(resources)} resources to {out}")
