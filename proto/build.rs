fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/kerno/kernel/v1/kernel.proto",
            "proto/kerno/plugin/v1/plugin.proto",
            "proto/kerno/runtime/v1/runtime.proto",
            "proto/kerno/network/v1/network.proto",
            "proto/kerno/admission/v1/admission.proto",
        ],
        &["proto"],
    )?;
    Ok(())
}
