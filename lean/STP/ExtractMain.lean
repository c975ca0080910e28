import STP.Extract

/-!
# `stp_extract`

One `{"op":"module",...}` line per module in; per module its `decl` and `cmd` lines and one
closing `done` (or `error`) line out. EOF → exit 0. Protocol: docs/protocol.md.
-/

open Lean

namespace STP

partial def extractLoop (stdin : IO.FS.Stream) : IO Unit := do
  let line ← stdin.getLine
  if line.isEmpty then return
  let line := Compat.trimText line
  if !line.isEmpty then
    match Json.parse line with
    | .error e => emit (extractErrorJson "" s!"invalid JSON: {e}")
    | .ok j =>
      let module := match getStr? j "module" with | .ok (some m) => m | _ => ""
      match ExtractRequest.parse j with
      | .error e => emit (extractErrorJson module e)
      | .ok req =>
        try extractModule req
        catch e => emit (extractErrorJson req.module s!"internal error: {e}")
  extractLoop stdin

end STP

open STP in
unsafe def main (_args : List String) : IO UInt32 := do
  initProcess
  extractLoop (← IO.getStdin)
  return 0
