import Lake
open Lake DSL System

/-!
The STP Lake workspace (repository root). Our two programs live under `lean/`:
`stp_check` (the proof checker) and `stp_extract` (the Mathlib extractor). They import only
`Lean`; Mathlib is loaded at run time by the header a checker session is configured with, so
`lake build` compiles our code in seconds and never rebuilds Mathlib.

Pin: Lean `v4.9.0-rc1` + upstream Mathlib `d1d1e4b72c6e009edd97cabe1d661b021fe8eeae`
(2024-06-12), the environment of the released STP / DeepSeek-Prover-V1.5 models.
`lake-manifest.json` was written from Mathlib's own manifest at that commit; see docs/lean.md.
-/

-- Same `package … where leanOptions` form as Mathlib's own lakefile at the pin.
package stp where
  leanOptions := #[⟨`autoImplicit, false⟩]

require mathlib from git
  "https://github.com/leanprover-community/mathlib4" @ "d1d1e4b72c6e009edd97cabe1d661b021fe8eeae"

lean_lib STP where
  srcDir := "lean"

/-- `lean/c/nondumpable.c`: `stp_set_nondumpable` (`prctl(PR_SET_DUMPABLE, 0)`), called first
thing by `stp_check` (issue #20). Written in exactly the form of a lakefile that built at
v4.9.0-rc1 (lean-dojo/LeanCopilot @ 1b07be5, `buildCpp`/`ct2.o`/`libleanffi`; see
lean/API_SOURCES.md). Needs a C compiler (`cc`) at `lake build` time. -/
def buildNondumpableO (pkg : Package) : SpawnM (BuildJob FilePath) := do
  let args := #["-fPIC", "-O2", "-I", (← getLeanIncludeDir).toString]
  let oFile := pkg.buildDir / "c" / "nondumpable.o"
  let srcJob ← inputFile <| pkg.dir / "lean" / "c" / "nondumpable.c"
  buildFileAfterDepList oFile [srcJob] (extraDepTrace := computeHash args) fun deps =>
    compileO oFile deps[0]! args "cc"

target nondumpable.o pkg : FilePath := do
  buildNondumpableO pkg

extern_lib libstpnative pkg := do
  let name := nameToStaticLib "stpnative"
  let nondumpableO ← nondumpable.o.fetch
  buildStaticLib (pkg.nativeLibDir / name) #[nondumpableO]

@[default_target]
lean_exe stp_check where
  root := `STP.CheckMain
  srcDir := "lean"
  supportInterpreter := true

@[default_target]
lean_exe stp_extract where
  root := `STP.ExtractMain
  srcDir := "lean"
  supportInterpreter := true
