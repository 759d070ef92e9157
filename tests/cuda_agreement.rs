//! CPU/CUDA agreement: the network's inference, one training step's
//! gradients and a whole fit give the same answers on CUDA device 0 as on
//! the CPU (the reference: the fast convolution and hand-written backward
//! pass).
//!
//! Every test opens the device first. In a build without `--features cuda`,
//! or on a machine without an NVIDIA GPU, it prints why it is skipped and
//! passes; `cargo test --features cuda --test cuda_agreement -- --nocapture`
//! on a GPU machine runs them for real.
//!
//! Tolerances (stated, not tuned to a run): network outputs within 1e-3
//! absolute (outputs are O(1); cuBLAS and the CPU GEMM sum in different
//! orders), gradients within 1e-3 relative to each parameter's largest
//! gradient, fitted axes within 0.1°.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use posescope::estimate::nn::conv::ConvBackend;
use posescope::estimate::nn::net::{NetConfig, OrientationNet};
use posescope::estimate::nn::trainer::NetTrainer;
use posescope::estimate::pose::fit::FitOptions;
use posescope::estimate::pose::pipeline::{default_weights, DeviceChoice, Fitter, ModelSpec};
use posescope::estimate::pose::train::{load_meta, OUTPUTS};
use posescope::geometry::axis_error;
use posescope::synth::{generate_frame, SynthConfig};
use rand::{Rng, SeedableRng};

/// CUDA device 0, or `None` after printing why the test is skipped.
fn cuda_or_skip(test: &str) -> Option<Device> {
    match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("{test}: skipped, no CUDA device ({e})");
            None
        }
    }
}

/// `shape` values from a seeded uniform(−1, 1), on `dev`.
fn seeded(seed: u64, shape: &[usize], dev: &Device) -> Tensor {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(v, shape, dev).expect("tensor")
}

fn host(t: &Tensor) -> Vec<f32> {
    t.flatten_all()
        .and_then(|t| t.to_device(&Device::Cpu))
        .and_then(|t| t.to_vec1::<f32>())
        .expect("to host")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The bundled network built on `dev` with `backend`.
fn bundled_net(dev: &Device, backend: ConvBackend) -> (OrientationNet, NetConfig) {
    let weights = default_weights().expect("bundled weights assets/torus.safetensors");
    let meta = load_meta(&weights).expect("sidecar");
    let bytes = std::fs::read(&weights).expect("weights");
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, dev).expect("weights load");
    let net = OrientationNet::with_backend(vb, &meta.net, backend).expect("net");
    (net, meta.net)
}

#[test]
fn network_inference_agrees() {
    let Some(gpu) = cuda_or_skip("network_inference_agrees") else {
        return;
    };
    let (cpu_net, cfg) = bundled_net(&Device::Cpu, ConvBackend::Fast);
    let (gpu_net, _) = bundled_net(&gpu, ConvBackend::Fast);
    let s = cfg.input_size;
    for batch in [1usize, 32] {
        let x = seeded(batch as u64, &[batch, 1, s, s], &Device::Cpu);
        let mut trainer = NetTrainer::new();
        let cpu = host(&trainer.infer(&cpu_net, &x).expect("cpu forward"));
        let gpu_out = gpu_net
            .forward(&x.to_device(&gpu).expect("upload"))
            .expect("cuda forward");
        assert!(gpu_out.device().is_cuda(), "the forward pass left the GPU");
        let diff = max_abs_diff(&cpu, &host(&gpu_out));
        println!("inference batch {batch}: max |cpu − cuda| = {diff:.2e}");
        assert!(diff <= 1e-3, "batch {batch}: outputs differ by {diff}");
    }
}

#[test]
fn training_step_gradients_agree() {
    let Some(gpu) = cuda_or_skip("training_step_gradients_agree") else {
        return;
    };
    let cfg = NetConfig {
        outputs: OUTPUTS,
        ..NetConfig::default()
    };
    let cpu_vars = VarMap::new();
    let cpu_net = OrientationNet::with_backend(
        VarBuilder::from_varmap(&cpu_vars, DType::F32, &Device::Cpu),
        &cfg,
        ConvBackend::Fast,
    )
    .expect("cpu net");
    let gpu_vars = VarMap::new();
    let gpu_net = OrientationNet::with_backend(
        VarBuilder::from_varmap(&gpu_vars, DType::F32, &gpu),
        &cfg,
        ConvBackend::Fast,
    )
    .expect("cuda net");
    // the same weights on both devices
    {
        let src = cpu_vars.data().lock().expect("vars");
        let dst = gpu_vars.data().lock().expect("vars");
        assert_eq!(src.len(), dst.len());
        for (name, var) in src.iter() {
            let t = var.as_tensor().to_device(&gpu).expect("upload");
            dst[name].set(&t).expect("set");
        }
    }
    let b = 8;
    let s = cfg.input_size;
    let x = seeded(11, &[b, 1, s, s], &Device::Cpu);
    let target = seeded(12, &[b, cfg.outputs], &Device::Cpu);
    let mut trainer = NetTrainer::new();
    let cpu_loss = trainer
        .backward(&cpu_net, &x, |o| candle_nn::loss::mse(o, &target))
        .expect("cpu backward")
        .to_scalar::<f32>()
        .expect("loss");
    let cpu_grads = trainer
        .gradients(&cpu_net)
        .expect("gradients")
        .expect("some gradients");

    let gx = x.to_device(&gpu).expect("upload");
    let gt = target.to_device(&gpu).expect("upload");
    let loss = candle_nn::loss::mse(&gpu_net.forward(&gx).expect("forward"), &gt).expect("loss");
    let grads = loss.backward().expect("cuda backward");
    let gpu_loss = host(&loss)[0];
    assert!(
        (cpu_loss - gpu_loss).abs() <= 1e-4 * cpu_loss.abs().max(1.0),
        "loss {cpu_loss} (cpu) vs {gpu_loss} (cuda)"
    );
    let params = gpu_net.parameters().expect("parameters");
    assert_eq!(params.len(), cpu_grads.len());
    for (i, (p, c)) in params.iter().zip(&cpu_grads).enumerate() {
        let g = host(grads.get(p).expect("a gradient for every parameter"));
        let c = host(c);
        let scale = c.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let rel = max_abs_diff(&c, &g) / scale;
        println!("parameter {i}: gradient rel. difference {rel:.2e}");
        assert!(
            rel <= 1e-3,
            "parameter {i}: gradients differ by {rel} (relative)"
        );
    }
}

#[test]
fn whole_fit_agrees() {
    if cuda_or_skip("whole_fit_agrees").is_none() {
        return;
    }
    let fitter = |device| {
        Fitter::new(
            &ModelSpec::default(),
            FitOptions::default(),
            None,
            true,
            device,
        )
        .expect("fitter")
    };
    let (cpu, gpu) = (fitter(DeviceChoice::Cpu), fitter(DeviceChoice::Cuda));
    assert!(gpu
        .estimator
        .as_ref()
        .expect("bundled network")
        .device()
        .is_cuda());
    let data = SynthConfig::thin_torus(6, 4242);
    let frames: Vec<_> = (0..6)
        .map(|i| generate_frame(&data, i).expect("frame").image)
        .collect();
    let refs: Vec<_> = frames.iter().collect();
    let a = cpu.fit_batch(&refs).expect("cpu fit");
    let b = gpu.fit_batch(&refs).expect("cuda fit");
    for (i, (a, b)) in a.iter().zip(&b).enumerate() {
        let (a, b) = (
            a.as_ref().expect("cpu frame"),
            b.as_ref().expect("cuda frame"),
        );
        let qa = a.outcome.state.pose.q;
        let qb = b.outcome.state.pose.q;
        let deg = axis_error(qa.axis(), qb.axis()).to_degrees();
        println!("frame {i}: cpu and cuda axes {deg:.4}° apart");
        assert!(deg <= 0.1, "frame {i}: fitted axes differ by {deg}°");
    }
}
