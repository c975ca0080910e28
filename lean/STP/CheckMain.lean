/-
`stp_check`: the proof checker. Protocol (version 3): docs/protocol.md. Reads a config line,
elaborates the header once, answers `ready`, then one `result` line per request line until EOF
(exit 0). The config's `role` says which requests it answers: role "check" answers `check`
(proof text), role "replay" answers `replay` (an EXPORT, never proof text); the other op gets
`error`/`bad_request`. Protocol lines go only to the stdout stream captured before anything else
ran; every elaboration of header, statement or proof text runs with isolated streams
(`Compat.isolated`).
-/
import STP.Check

open Lean

namespace STP

def safeCheck (c : CheckerSession) (req : CheckRequest) : IO CheckResponse := do
  try
    checkRequest c req
  catch e =>
    return errorResponse req.id (some req.nonce) "internal_error" (toString e)

def safeReplay (c : CheckerSession) (req : ReplayRequest) : IO CheckResponse := do
  try
    replayRequest c req
  catch e =>
    return errorResponse req.id (some req.nonce) "internal_error" (toString e)

/-- The answer to one request line. `id` and `nonce` are echoed whenever the line is JSON that
has them, even when the rest of it is malformed. -/
def answer (c : CheckerSession) (line : String) : IO CheckResponse := do
  match Json.parse line with
  | .error e => return errorResponse "" none "bad_request" s!"invalid JSON: {e}"
  | .ok j =>
    let id := match getStr? j "id" with | .ok (some i) => i | _ => ""
    let nonce? := match getStr? j "nonce" with | .ok (some n) => some n | _ => none
    match getStr? j "op" with
    | .ok (some "check") =>
      if c.config.replayRole then
        return errorResponse id nonce? "bad_request" "a replay worker answers only \"replay\""
      match CheckRequest.parse j with
      | .error e => return errorResponse id nonce? "bad_request" e
      | .ok req => safeCheck c req
    | .ok (some "replay") =>
      if !c.config.replayRole then
        return errorResponse id nonce? "bad_request" "a check worker answers only \"check\""
      match ReplayRequest.parse j with
      | .error e => return errorResponse id nonce? "bad_request" e
      | .ok req => safeReplay c req
    | .ok (some "config") => return errorResponse id nonce? "bad_request" "config was already given"
    | .ok (some op) => return errorResponse id nonce? "unknown_op" s!"unknown op \"{op}\""
    | .ok none => return errorResponse id nonce? "bad_request" "missing field 'op'"
    | .error e => return errorResponse id nonce? "bad_request" e

partial def serve (out : IO.FS.Stream) (c : CheckerSession) (stdin : IO.FS.Stream) : IO Unit := do
  let line ← stdin.getLine
  if line.isEmpty then return  -- EOF
  let line := Compat.trimText line
  if line.isEmpty then return ← serve out c stdin
  emitTo out (← answer c line).json
  serve out c stdin

/-- Wait for the config line; anything else before it gets an `error` answer. -/
partial def readConfig (out : IO.FS.Stream) (stdin : IO.FS.Stream) :
    IO (Option CheckerConfig) := do
  let line ← stdin.getLine
  if line.isEmpty then return none
  let line := Compat.trimText line
  if line.isEmpty then return ← readConfig out stdin
  let parsed : Except String CheckerConfig := match Json.parse line with
    | .error e => .error s!"invalid JSON: {e}"
    | .ok j => match getStr? j "op" with
      | .ok (some "config") => CheckerConfig.parse j
      | _ => .error "the first line must be a config line ({\"op\":\"config\",...})"
  match parsed with
  | .ok cfg => return some cfg
  | .error e =>
    emitTo out (errorResponse "" none "bad_request" e).json
    readConfig out stdin

end STP

open STP in
unsafe def main (_args : List String) : IO UInt32 := do
  -- The protocol channel: the real stdout and stdin, taken before any Lean code of ours or of
  -- the user's ran. Everything after this writes protocol lines to `out` only.
  let out ← IO.getStdout
  let stdin ← IO.getStdin
  initProcess
  let some cfg ← readConfig out stdin | return 0
  let header ← loadHeader cfg.header cfg.maxHeartbeats cfg.headerTrusted
  emitTo out (readyJson header.errors.isEmpty Lean.versionString header.ms header.errors)
  let refs ← IO.mkRef (#[] : Array (String × Except RefProblem RefStatement))
  serve out { config := cfg, header, refs } stdin
  return 0
