import Lake
open Lake DSL

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
