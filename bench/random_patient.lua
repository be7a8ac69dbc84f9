-- wrk script: Observation?patient=X&_count=50 for a random one of $PATIENTS patients
-- (p0 … p{PATIENTS-1}), so that most of what a search reads was not read just before.
local patients = tonumber(os.getenv("PATIENTS") or "1000")
math.randomseed(7)
request = function()
  return wrk.format("GET", "/ccri-fhir/R4/Observation?patient=p" .. math.random(0, patients - 1) .. "&_count=50")
end
