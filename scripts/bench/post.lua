-- wrk script: POST the file named by BODY_FILE to /v1/events with the
-- content type in CONTENT_TYPE; no ids, so the engine makes a new id for
-- every event and every request stores new rows.
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/x-ndjson"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
