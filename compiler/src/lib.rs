//! Veil's compiler: model file → graph IR → passes → analyses → parameters → circuit plan.
//!
//! Layers point one way: [`model`] (the file schema) → [`ir`] (graph, checked once at the
//! border by [`ir::build`]) → [`passes`] → [`analysis`] (read-only side tables: quantisation,
//! ranges, depth) → [`params`] (parameter search and schedule) → [`emit`] (the plan).
//!
//! The entry points are [`compile_path`] (a model file) and [`compile_graph`]; [`float_eval`]
//! and [`Compiled::quantized_scores`] evaluate the float model and its integer circuit for
//! accuracy checks; the runtime's `exec::exact_scores` runs a plan on integers exactly.

pub mod accuracy;
pub mod analysis;
pub mod emit;
pub mod ir;
pub mod model;
pub mod onnx;
pub mod packing;
pub mod params;
pub mod passes;
pub mod report;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

use analysis::{LayerError, NodeRange, QCircuit, QuantError, QuantOptions};
use ir::Graph;
use model::{LoadedModel, ModelError};
pub use onnx::ImportOptions;
use packing::{LayoutPrice, PackOptions};
use params::{ParamError, ParamOptions};
pub use passes::ActivationChoice;
use passes::{PassError, PassManager, ReplaceActivations};
use report::LayoutComparison;
pub use report::Report;
use std::collections::BTreeMap;
use std::path::Path;
use thiserror::Error;
use veil_runtime::plan::{Calibration, Plan, Scheme, ValidationError};
use veil_runtime::security::SecurityLevel;

/// Default bits of the largest integer weight of each row.
pub const DEFAULT_WEIGHT_BITS: u32 = 8;
/// Default bits of the integer input when the declared range is not already small integers
/// (the quantiser accepts 2..=24).
pub const DEFAULT_INPUT_BITS: u32 = 8;
/// Default safety margin of calibrated bounds (bits; 1 bit = ×2).
pub const DEFAULT_CALIBRATION_MARGIN_BITS: f64 = 1.0;
/// Most calibration images evaluated.
pub const MAX_CALIBRATION_SAMPLES: usize = 10_000;

/// Compiler options.
#[derive(Clone, Debug, PartialEq)]
pub struct CompileOptions {
    /// Target security; `None` compiles explicitly insecure parameters (`--insecure`).
    pub security: Option<SecurityLevel>,
    /// Bits of the largest integer weight of each row (sign included).
    pub weight_bits: u32,
    /// When set, `weight_bits` is ignored and each layer gets the fewest weight bits whose
    /// worst-row weight error is at most this fraction (`--weight-bits auto`;
    /// [`analysis::DEFAULT_ERROR_TARGET`] is the command line's default).
    pub weight_error_target: Option<f64>,
    /// Bits of the integer input when the declared range is not small integers.
    pub input_bits: u32,
    /// Noise budget every output must keep (bits).
    pub margin_bits: f64,
    /// The homomorphic scheme, or `None` to let the cost model choose (`--scheme auto`).
    pub scheme: Option<Scheme>,
    /// Calibration inputs for data-driven value bounds: each one raw input (C, H, W order) in
    /// the units of the model's declared input range, the same values `veil infer --images`
    /// encrypts; at most [`MAX_CALIBRATION_SAMPLES`] are evaluated. Reading them from files is
    /// the caller's job.
    pub calibration_samples: Option<Vec<Vec<f64>>>,
    /// Safety margin of calibrated bounds (bits).
    pub calibration_margin_bits: f64,
    /// What replaces ReLU, GELU, sigmoid and tanh: x² (default) or a degree-2 polynomial fitted on
    /// the calibration inputs, which [`ActivationChoice::Fit`] requires.
    pub activation: ActivationChoice,
    /// Keep the IR text before and after every pass.
    pub dump_ir: bool,
    /// What an ONNX file does not say (the input range, class names); for model files, when
    /// given, it replaces what the file declares. Used by [`compile_path`].
    pub import: ImportOptions,
    /// The layout: one image per slot, one image per lane of slots (packed), or the cheaper
    /// for [`CompileOptions::batch_size`] images (`--layout`).
    pub layout: LayoutChoice,
    /// The batch size the user expects (`--batch-size`); `None` means a full batch, for which
    /// [`LayoutChoice::Auto`] keeps the slot layout without pricing the packed one.
    pub batch_size: Option<usize>,
    /// What one Galois key is worth in rotations when the packed layout splits each map's
    /// rotations (`--galois-key-cost`; [`packing::split::NEW_KEY`] by default): raise it for
    /// fewer, smaller evaluation keys and more rotations, lower it for the opposite.
    pub galois_key_cost: f64,
}

/// Which layout the compiler emits (`--layout`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LayoutChoice {
    /// The cheaper for the batch size by the cost model (the slot layout without one).
    #[default]
    Auto,
    /// One image per slot, one ciphertext per value ([`Plan::packing`] absent).
    Slots,
    /// One image per lane of slots, one ciphertext per register ([`packing`]).
    Packed,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            security: Some(SecurityLevel::Bits128),
            weight_bits: DEFAULT_WEIGHT_BITS,
            weight_error_target: None,
            input_bits: DEFAULT_INPUT_BITS,
            margin_bits: params::model::DEFAULT_MARGIN_BITS,
            scheme: params::DEFAULT_SCHEME,
            calibration_samples: None,
            calibration_margin_bits: DEFAULT_CALIBRATION_MARGIN_BITS,
            activation: ActivationChoice::Square,
            dump_ir: false,
            import: ImportOptions::default(),
            layout: LayoutChoice::Auto,
            batch_size: None,
            galois_key_cost: packing::split::NEW_KEY,
        }
    }
}

/// Why compilation failed.
#[derive(Debug, Error)]
pub enum CompileError {
    /// The model file is wrong.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The ONNX file cannot be imported.
    #[error(transparent)]
    Onnx(#[from] onnx::OnnxError),
    /// A pass failed.
    #[error(transparent)]
    Pass(#[from] PassError),
    /// Quantisation failed.
    #[error(transparent)]
    Quant(#[from] QuantError),
    /// Calibration data could not be used.
    #[error("calibration: {0}")]
    Calibration(String),
    /// No parameters hold the circuit.
    #[error(transparent)]
    Params(#[from] ParamError),
    /// The packed layout was asked for and does not apply.
    #[error(transparent)]
    Packing(#[from] packing::PackError),
    /// The emitted plan is inconsistent (a compiler bug).
    #[error("internal error: the emitted plan is invalid: {0}")]
    Plan(#[from] ValidationError),
}

/// A compiled model.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The plan.
    pub plan: Plan,
    /// The report (with passes and warnings).
    pub report: Report,
    /// Warnings: approximations made by passes, then layers whose quantisation error is large.
    pub warnings: Vec<String>,
    /// The quantisation error of every affine layer (output errors when calibration inputs
    /// were given).
    pub quant_errors: Vec<LayerError>,
    /// The float graph after each pass that changed the function (max pool → sum pool,
    /// activation replacement), in order, named by the pass: with [`Compiled::source`] before
    /// and the plan after, the stages whose accuracy a report compares.
    pub stages: Vec<(&'static str, Graph)>,
    /// What replaced the activations.
    pub activation: ActivationChoice,
    /// Passes run, with whether each changed the graph.
    pub passes: Vec<(&'static str, bool)>,
    /// `(stage, IR text)` before and after every pass and, last, with analysis facts; empty
    /// unless `dump_ir`.
    pub ir_dumps: Vec<(String, String)>,
    /// The model as loaded (float reference).
    pub source: Graph,
    /// The graph after the passes.
    pub lowered: Graph,
    /// The integer circuit.
    pub circuit: QCircuit,
    /// Value bounds per circuit node.
    pub ranges: Vec<NodeRange>,
}

impl Compiled {
    /// Scores of the integer circuit (dequantised) for one raw input, in f64.
    pub fn quantized_scores(&self, raw: &[f32]) -> Vec<f64> {
        let raw: Vec<f64> = raw.iter().map(|&v| f64::from(v)).collect();
        self.circuit.scores(&raw)
    }

    /// Scores of the float model as loaded (before approximations) for one raw input.
    pub fn float_scores(&self, raw: &[f32]) -> Result<Vec<f32>, ir::eval::EvalError> {
        float_eval(&self.source, raw)
    }
}

/// Reads a model file and builds its IR (all validation happens here). An ONNX file is
/// refused here for want of an input range: use [`load_model_with`].
pub fn load_model(path: &Path) -> Result<Graph, CompileError> {
    Ok(load_model_with(path, &ImportOptions::default())?.0)
}

/// Reads a model file or an ONNX file (recognised by content, [`onnx::is_onnx`]) and builds
/// its IR; also returns the importer's notes (empty for model files).
pub fn load_model_with(
    path: &Path,
    opts: &ImportOptions,
) -> Result<(Graph, Vec<String>), CompileError> {
    let (loaded, notes) = load_source(path, opts)?;
    Ok((ir::build::build(&loaded)?, notes))
}

/// Reads a model file, or imports an ONNX file, without building the IR; with the importer's
/// notes.
pub fn load_source(
    path: &Path,
    opts: &ImportOptions,
) -> Result<(LoadedModel, Vec<String>), CompileError> {
    if onnx::is_onnx(path) {
        let imported = onnx::read(path, opts)?;
        Ok((
            model::from_parts(path, imported.model, imported.tensors),
            imported.notes,
        ))
    } else {
        let mut loaded = model::load(path)?;
        opts.apply(&mut loaded.model);
        Ok((loaded, Vec::new()))
    }
}

/// Evaluates a model graph in floating point on one raw input (C, H, W order).
pub fn float_eval(g: &Graph, raw: &[f32]) -> Result<Vec<f32>, ir::eval::EvalError> {
    let x: Vec<f64> = raw.iter().map(|&v| f64::from(v)).collect();
    Ok(ir::eval::evaluate(g, &x)?
        .into_iter()
        .map(|v| v as f32)
        .collect())
}

/// Compiles a model file or an ONNX file (with `opts.import`); the importer's notes come
/// first among the warnings.
pub fn compile_path(path: &Path, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let (graph, notes) = load_model_with(path, &opts.import)?;
    let mut compiled = compile_graph(graph, opts)?;
    compiled.warnings.splice(0..0, notes.iter().cloned());
    compiled.report.warnings.splice(0..0, notes);
    Ok(compiled)
}

/// Checks calibration inputs against the model's input and keeps at most
/// [`MAX_CALIBRATION_SAMPLES`] of them.
fn calibration_samples<'a>(
    samples: &'a [Vec<f64>],
    g: &Graph,
) -> Result<&'a [Vec<f64>], CompileError> {
    let len = g.node(g.input).len();
    if samples.is_empty() {
        return Err(CompileError::Calibration("no calibration inputs".into()));
    }
    if let Some((index, sample)) = samples.iter().enumerate().find(|(_, s)| s.len() != len) {
        return Err(CompileError::Calibration(format!(
            "input {index} has {} values but the model input has {len}",
            sample.len()
        )));
    }
    for (index, sample) in samples.iter().enumerate() {
        if let Some((position, value)) = sample.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(CompileError::Calibration(format!(
                "input {index}, value {position} is {value}, not a finite number"
            )));
        }
    }
    Ok(&samples[..samples.len().min(MAX_CALIBRATION_SAMPLES)])
}

/// Compiles a model graph.
pub fn compile_graph(source: Graph, opts: &CompileOptions) -> Result<Compiled, CompileError> {
    let samples = match &opts.calibration_samples {
        Some(samples) => Some(calibration_samples(samples, &source)?),
        None => None,
    };
    let replace = match (opts.activation, samples) {
        (ActivationChoice::Square, _) => ReplaceActivations::square(),
        (ActivationChoice::Fit, Some(samples)) => ReplaceActivations::fitted(samples),
        (ActivationChoice::Fit, None) => {
            return Err(CompileError::Calibration(
                "a fitted activation (--activation fit) is fitted to the values each layer sees on calibration inputs: give them with --calibrate IMAGES".into(),
            ))
        }
    };
    let mut g = source.clone();
    let outcome = PassManager::standard_with(replace)
        .dump(opts.dump_ir)
        .run(&mut g)?;
    let circuit = analysis::quantize(
        &g,
        &QuantOptions {
            weight_bits: opts.weight_bits,
            input_bits: opts.input_bits,
            error_target: opts.weight_error_target,
        },
    )?;
    let mut quant_errors = analysis::weight_errors(&g, &circuit);
    let mut ranges = analysis::analyze(&circuit);
    let mut calibration = None;
    if let Some(samples) = samples {
        analysis::calibrate(&circuit, &mut ranges, samples, opts.calibration_margin_bits);
        analysis::measure_output_errors(&g, &circuit, samples, &mut quant_errors);
        calibration = Some(Calibration {
            samples: samples.len(),
            margin_bits: opts.calibration_margin_bits,
        });
    }
    let mut chosen = params::select(
        &circuit,
        &ranges,
        &ParamOptions {
            security: opts.security,
            margin_bits: opts.margin_bits,
            scheme: opts.scheme,
        },
    )?;
    // The low bits the wire drops, and the schedule's noise with rounded uploads.
    let rounding = params::compress::choose(&circuit, &chosen, opts.margin_bits);
    chosen.sim = rounding.sim.clone();
    let info = emit::EmitInfo {
        model: &source.model_name,
        classes: &source.classes,
        calibration,
    };
    let mut plan = emit::emit(&circuit, &ranges, &chosen, &info);
    rounding.apply(&mut plan);
    plan.validate()?;
    let slots = LayoutPrice::slots(chosen.n, chosen.sim.cost_per_image);
    let (plan, layouts) = choose_layout(plan, slots, opts)?;
    let mut ir_dumps = outcome.dumps;
    if opts.dump_ir {
        ir_dumps.push(("analysis".into(), g.to_text_with(&facts(&circuit, &plan))));
    }
    let mut warnings = outcome.warnings;
    warnings.extend(
        quant_errors
            .iter()
            .filter(|e| e.is_large())
            .map(LayerError::warning),
    );
    let mut report = Report::from_plan(&plan);
    if plan.packing.is_none() {
        report.schemes = chosen.options.clone();
    }
    report.layouts = layouts;
    report.passes = outcome
        .applied
        .iter()
        .map(|&(name, changed)| pass_summary(name, changed))
        .collect();
    report.warnings = warnings.clone();
    report.quantisation = quant_errors.iter().map(report::QuantRow::from).collect();
    report.weight_error_target = opts.weight_error_target;
    Ok(Compiled {
        plan,
        report,
        warnings,
        quant_errors,
        stages: outcome.stages,
        activation: opts.activation,
        passes: outcome.applied,
        ir_dumps,
        source,
        lowered: g,
        circuit,
        ranges,
    })
}

/// The layout `opts` asks for, given the slot plan `slot` and its price: the plan to emit,
/// and the comparison of both layouts for the report (when a batch size or a layout was given).
fn choose_layout(
    slot: Plan,
    slot_price: LayoutPrice,
    opts: &CompileOptions,
) -> Result<(Plan, Option<LayoutComparison>), CompileError> {
    if opts.layout == LayoutChoice::Auto && opts.batch_size.is_none() {
        return Ok((slot, None));
    }
    let pack_opts = PackOptions {
        security: opts.security,
        margin_bits: opts.margin_bits,
        galois_key_cost: opts.galois_key_cost,
    };
    let packed = if opts.scheme == Some(Scheme::Bgv) {
        Err(packing::PackError::NotBfv)
    } else {
        packing::pack(&slot, &pack_opts)
    };
    let packed = match packed {
        Ok(packed) => Ok(packed),
        Err(e) if opts.layout == LayoutChoice::Packed => return Err(e.into()),
        Err(e) => Err(e),
    };
    let batch = opts.batch_size.unwrap_or(1).max(1);
    let slot_option = report::LayoutOption::of(&slot, "slots", slot_price, batch, 0);
    let Ok(packed) = packed else {
        let reason = packed.err().map(|e| e.to_string());
        let comparison = LayoutComparison::new(batch, slot_option, None, reason);
        return Ok((slot, Some(comparison)));
    };
    let packed_option = report::LayoutOption::of(
        &packed.plan,
        "packed",
        packed.price,
        batch,
        packed.figures.galois_keys,
    );
    let use_packed = match opts.layout {
        LayoutChoice::Packed => true,
        LayoutChoice::Slots => false,
        LayoutChoice::Auto => packed_option.seconds < slot_option.seconds,
    };
    let (mut chosen, mut rejected) = (slot_option, packed_option);
    if use_packed {
        std::mem::swap(&mut chosen, &mut rejected);
    }
    chosen.chosen = true;
    let comparison = LayoutComparison::new(batch, chosen, Some(rejected), None);
    Ok((
        if use_packed { packed.plan } else { slot },
        Some(comparison),
    ))
}

/// The analysis facts of every circuit node, as the IR text prints them after the node:
/// value bound (and calibrated bound), depth, level and predicted noise budget.
fn facts(circuit: &QCircuit, plan: &Plan) -> BTreeMap<ir::NodeId, String> {
    circuit
        .nodes
        .iter()
        .zip(&plan.registers)
        .map(|(node, reg)| {
            let calibrated = reg
                .calibrated_value_bits
                .map(|c| format!(" (calibrated 2^{c:.1})"))
                .unwrap_or_default();
            let text = format!(
                "|x| ≤ 2^{:.1}{calibrated}, depth {}, level {}, budget {:.1} bits",
                reg.value_bits, reg.depth, reg.level, reg.noise_budget_bits
            );
            (node.id, text)
        })
        .collect()
}

/// A pass as the report lists it.
fn pass_summary(name: &str, changed: bool) -> String {
    if changed {
        name.to_owned()
    } else {
        format!("{name} (no change)")
    }
}
