import STP.Check
import STP.Judge

/-!
# `stp_check`: the proof checker, the statement process and the judge

Protocol (version 4): docs/protocol.md. Reads a config line, then by its `role`:
* `check`: elaborates the header once, answers `ready`, then one `result` line per `check`
  request (a strict pass with `export: true` carries its EXPORT, inline or, above
  `exportChunkBytes`, as `export_chunks: N` followed at once by N `export_chunk` lines);
* `statement`: the same header elaboration, then `reference` requests (REFERENCE objects);
* `replay` (the judge): imports the config's `imports` (no text is parsed or elaborated),
  answers `ready`, then `replay` requests.
A request for another role's op gets `error`/`bad_request`. Every process exits 0 on EOF.
Protocol lines go only to the stdout stream captured before anything else ran; every
elaboration of header, statement or proof text runs with isolated streams (`Compat.isolated`).
The process makes itself non-dumpable first (`setNonDumpable`).
-/

open Lean

namespace STP

/-- What a process serves: a session that elaborates (roles `check`, `statement`) or the judge. -/
inductive Worker where
  | elaborating (c : CheckerSession)
  | judge (j : JudgeSession)

def Worker.role : Worker → Role
  | .elaborating c => c.config.role
  | .judge _ => Role.replay

/-- Any exception of one request becomes that request's `error`/`internal_error`. -/
def guarded (id nonce : String) (x : IO CheckResponse) : IO CheckResponse := do
  try
    x
  catch e =>
    return errorResponse id (some nonce) .internalError (toString e)

/-- The answer to a request line whose `op` is this process's own. -/
def answerOwn (w : Worker) (j : Json) (id : String) (nonce? : Option String) :
    IO CheckResponse := do
  match w with
  | .judge js =>
    match ReplayRequest.parse j with
    | .error e => return errorResponse id nonce? .badRequest e
    | .ok req => guarded req.id req.nonce (replayRequest js req)
  | .elaborating c =>
    if c.config.role == Role.statement then
      match ReferenceRequest.parse j with
      | .error e => return errorResponse id nonce? .badRequest e
      | .ok req => guarded req.id req.nonce (referenceRequest c req)
    else
      match CheckRequest.parse j with
      | .error e => return errorResponse id nonce? .badRequest e
      | .ok req => guarded req.id req.nonce (checkRequest c req)

/-- The answer to one request line. `id` and `nonce` are echoed whenever the line is JSON that
has them, even when the rest of it is malformed. -/
def answer (w : Worker) (line : String) : IO CheckResponse := do
  match Json.parse line with
  | .error e => return errorResponse "" none .badRequest s!"invalid JSON: {e}"
  | .ok j =>
    let id := match getStr? j "id" with | .ok (some i) => i | _ => ""
    let nonce? := match getStr? j "nonce" with | .ok (some n) => some n | _ => none
    let role := w.role
    match getStr? j "op" with
    | .ok (some "config") => return errorResponse id nonce? .badRequest "config was already given"
    | .ok (some op) =>
      if op == role.op then answerOwn w j id nonce?
      else if Role.all.any (·.op == op) then
        return errorResponse id nonce? .badRequest
          s!"a {role.wire} process answers only \"{role.op}\""
      else return errorResponse id nonce? .unknownOp s!"unknown op \"{op}\""
    | .ok none => return errorResponse id nonce? .badRequest "missing field 'op'"
    | .error e => return errorResponse id nonce? .badRequest e

/-- Write one answer. An EXPORT whose compact text is over `exportChunkBytes` goes as
`export_chunks: N` on the result line, then the N `export_chunk` lines right after it. -/
def emitAnswer (out : IO.FS.Stream) (r : CheckResponse) : IO Unit := do
  match r.exportJson? with
  | none => emitTo out r.json
  | some e =>
    let text := e.compress
    if text.utf8ByteSize ≤ exportChunkBytes then
      emitTo out r.json
    else
      let pieces := chunkText text exportChunkBytes
      emitTo out (CheckResponse.json { r with exportJson? := none, exportChunks := pieces.size })
      let nonce := r.nonce?.getD ""
      let mut index := 0
      for piece in pieces do
        emitTo out (exportChunkJson r.id nonce index piece)
        index := index + 1

partial def serve (out : IO.FS.Stream) (w : Worker) (stdin : IO.FS.Stream) : IO Unit := do
  let line ← stdin.getLine
  if line.isEmpty then return  -- EOF
  let line := Compat.trimText line
  if line.isEmpty then return ← serve out w stdin
  emitAnswer out (← answer w line)
  serve out w stdin

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
    emitTo out (errorResponse "" none .badRequest e).json
    readConfig out stdin

/-- `prctl(PR_SET_DUMPABLE, 0)` (`lean/c/nondumpable.c`, linked through the lakefile's
`extern_lib`; a no-op off Linux): no other process of the same user can open this process's
`/proc/<pid>/mem` or attach to it. Throws when the call fails (the checker then does not
start). -/
@[extern "stp_set_nondumpable"]
opaque setNonDumpable : IO Unit

end STP

open STP in
unsafe def main (_args : List String) : IO UInt32 := do
  -- Non-dumpable before anything else runs (issue #20).
  setNonDumpable
  -- The protocol channel: the real stdout and stdin, taken before any Lean code of ours or of
  -- the user's ran. Everything after this writes protocol lines to `out` only.
  let out ← IO.getStdout
  let stdin ← IO.getStdin
  initProcess
  let some cfg ← readConfig out stdin | return 0
  match cfg.role with
  | .replay =>
    -- The judge: imports only, no header text.
    let js ← loadJudge cfg
    emitTo out (readyJson js.errors.isEmpty Lean.versionString js.ms js.errors)
    serve out (.judge js) stdin
  | _ =>
    let header ← loadHeader cfg.header cfg.maxHeartbeats cfg.headerTrusted
    emitTo out (readyJson header.errors.isEmpty Lean.versionString header.ms header.errors)
    let refs ← IO.mkRef (#[] : Array ((String × Nat) × Except RefProblem RefStatement))
    serve out (.elaborating { config := cfg, header, refs }) stdin
  return 0
