/-
`stp_check`: the proof checker. Protocol: docs/protocol.md. Reads a config line, elaborates the
header once, answers `ready`, then one `result` line per request line until EOF (exit 0).
-/
import STP.Check

open Lean

namespace STP

def safeCheck (c : CheckerSession) (req : CheckRequest) : IO CheckResponse := do
  try
    checkRequest c req
  catch e =>
    return errorResponse req.id "internal_error" (toString e)

partial def serve (c : CheckerSession) (stdin : IO.FS.Stream) : IO Unit := do
  let line ← stdin.getLine
  if line.isEmpty then return  -- EOF
  let line := Compat.trimText line
  if line.isEmpty then return ← serve c stdin
  let resp ← match Json.parse line with
    | .error e => pure (errorResponse "" "bad_request" s!"invalid JSON: {e}")
    | .ok j =>
      let id := match getStr? j "id" with | .ok (some i) => i | _ => ""
      match getStr? j "op" with
      | .ok (some "check") =>
        match CheckRequest.parse j with
        | .error e => pure (errorResponse id "bad_request" e)
        | .ok req => safeCheck c req
      | .ok (some "config") => pure (errorResponse id "bad_request" "config was already given")
      | .ok (some op) => pure (errorResponse id "unknown_op" s!"unknown op \"{op}\"")
      | .ok none => pure (errorResponse id "bad_request" "missing field 'op'")
      | .error e => pure (errorResponse id "bad_request" e)
  emit resp.json
  serve c stdin

/-- Wait for the config line; anything else before it gets an `error` answer. -/
partial def readConfig (stdin : IO.FS.Stream) : IO (Option CheckerConfig) := do
  let line ← stdin.getLine
  if line.isEmpty then return none
  let line := Compat.trimText line
  if line.isEmpty then return ← readConfig stdin
  let problem : String := match Json.parse line with
    | .error e => s!"invalid JSON: {e}"
    | .ok j => match getStr? j "op" with
      | .ok (some "config") => match CheckerConfig.parse j with
        | .ok _ => ""
        | .error e => e
      | _ => "the first line must be a config line ({\"op\":\"config\",...})"
  if problem.isEmpty then
    match Json.parse line >>= CheckerConfig.parse with
    | .ok cfg => return some cfg
    | .error e =>
      emit (errorResponse "" "bad_request" e).json
      readConfig stdin
  else
    emit (errorResponse "" "bad_request" problem).json
    readConfig stdin

end STP

open STP in
unsafe def main (_args : List String) : IO UInt32 := do
  initProcess
  let stdin ← IO.getStdin
  let some cfg ← readConfig stdin | return 0
  let header ← loadHeader cfg.header cfg.maxHeartbeats
  emit (readyJson header.errors.isEmpty Lean.versionString header.ms header.errors)
  let refs ← IO.mkRef (#[] : Array (String × Except (List Msg) RefStatement))
  serve { config := cfg, header, refs } stdin
  return 0
