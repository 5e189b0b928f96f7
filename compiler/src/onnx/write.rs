//! Writing an imported model as a model file plus a safetensors file (`veil import`).

use super::{Imported, OnnxError};
use std::io::Write;
use std::path::{Path, PathBuf};

impl Imported {
    /// The model file's text (RON), naming `weights` as its weights file, with a first comment
    /// line saying where it came from.
    pub fn to_ron(&self, source: &Path, weights: Option<&str>) -> Result<String, String> {
        let mut model = self.model.clone();
        model.weights = weights.map(str::to_owned);
        let config = ron::ser::PrettyConfig::new()
            .struct_names(true)
            .depth_limit(4);
        let body = ron::ser::to_string_pretty(&model, config).map_err(|e| e.to_string())?;
        let mut text = format!(
            "// Imported from {} by `veil import`.\n",
            source
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        );
        for note in &self.notes {
            text.push_str(&format!("// Note: {note}\n"));
        }
        // Layers without inline tensors (all of them here) need no `params` line.
        for line in body.lines().filter(|l| l.trim() != "params: {},") {
            text.push_str(line);
            text.push('\n');
        }
        Ok(text)
    }

    /// Writes the model file `ron_path` and, when the model has tensors, the safetensors file
    /// beside it (`<stem>.safetensors`), each through a temporary file renamed into place.
    /// Refuses to replace existing files unless `overwrite`. Returns the paths written.
    pub fn write_files(
        &self,
        source: &Path,
        ron_path: &Path,
        overwrite: bool,
    ) -> Result<Vec<PathBuf>, OnnxError> {
        let fail = |file: &Path, message: String| OnnxError::Io {
            file: file.to_path_buf(),
            message,
        };
        let stem = ron_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| fail(ron_path, "the output path names no file".into()))?;
        let weights_name = format!("{stem}.safetensors");
        let weights_path = ron_path.with_file_name(&weights_name);
        let has_weights = !self.tensors.tensors.is_empty();
        let mut outputs = vec![(ron_path.to_path_buf(), Vec::new())];
        if has_weights {
            let bytes = self
                .tensors
                .to_safetensors_f32()
                .map_err(|e| fail(&weights_path, e))?;
            outputs.push((weights_path, bytes));
        }
        let text = self
            .to_ron(source, has_weights.then_some(weights_name.as_str()))
            .map_err(|e| fail(ron_path, e))?;
        outputs[0].1 = text.into_bytes();
        if !overwrite {
            if let Some((p, _)) = outputs.iter().find(|(p, _)| p.exists()) {
                return Err(fail(
                    p,
                    "the file exists; pass --force to replace it".into(),
                ));
            }
        }
        for (path, bytes) in &outputs {
            write_atomically(path, bytes).map_err(|e| fail(path, e.to_string()))?;
        }
        Ok(outputs.into_iter().map(|(p, _)| p).collect())
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
