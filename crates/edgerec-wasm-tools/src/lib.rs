//! Checks of the WebAssembly modules the build ships.
//!
//! The baseline build is for engines without WebAssembly SIMD, and an engine without SIMD
//! refuses a whole module if one function uses it. [`validate`] checks a module against an
//! explicit feature set, ignoring what the module's own `target_features` section claims
//! (binaryen's validation trusts that section, so `wasm-opt --disable-simd` did not catch the
//! SIMD that rustfft's kernels spread through an earlier baseline build; see
//! crates/rustfft-scalar).

pub mod tv;

use anyhow::Result;
use wasmparser::{Validator, WasmFeatures};

/// The features of the baseline build: what wasmparser enables by default, without SIMD and
/// relaxed SIMD.
pub fn baseline_features() -> WasmFeatures {
    WasmFeatures::default() - WasmFeatures::SIMD - WasmFeatures::RELAXED_SIMD
}

/// Validates `module` with exactly `features` enabled.
pub fn validate(module: &[u8], features: WasmFeatures) -> Result<()> {
    Validator::new_with_features(features).validate_all(module)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::{
        CodeSection, CustomSection, Function, FunctionSection, Instruction, Module, TypeSection,
        ValType,
    };

    /// One function returning an i32: through `f32x4.add` of two splats if `simd`, else a
    /// constant. The module's `target_features` section claims `-simd128` either way.
    fn module(simd: bool) -> Vec<u8> {
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], [ValType::I32]);
        m.section(&types);
        let mut funcs = FunctionSection::new();
        funcs.function(0);
        m.section(&funcs);
        let mut f = Function::new([]);
        if simd {
            f.instruction(&Instruction::F32Const(1.0));
            f.instruction(&Instruction::F32x4Splat);
            f.instruction(&Instruction::F32Const(2.0));
            f.instruction(&Instruction::F32x4Splat);
            f.instruction(&Instruction::F32x4Add);
            f.instruction(&Instruction::I32x4ExtractLane(0));
        } else {
            f.instruction(&Instruction::I32Const(7));
        }
        f.instruction(&Instruction::End);
        let mut code = CodeSection::new();
        code.function(&f);
        m.section(&code);
        let claim = [1, b'-', 7, b's', b'i', b'm', b'd', b'1', b'2', b'8'];
        m.section(&CustomSection {
            name: "target_features".into(),
            data: claim[..].into(),
        });
        m.finish()
    }

    #[test]
    fn simd_is_refused_whatever_the_module_claims() {
        validate(&module(true), WasmFeatures::default()).unwrap();
        let err = validate(&module(true), baseline_features()).unwrap_err();
        assert!(err.to_string().contains("SIMD"), "{err}");
        validate(&module(false), baseline_features()).unwrap();
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(validate(b"not wasm", baseline_features()).is_err());
        assert!(validate(b"\0asm\x01\0\0\0\x0a\xff", baseline_features()).is_err());
    }
}
