//! Compiles go-plugin's controller service (proto/grpc_controller.proto)
//! with the vendored protoc, so building needs no protoc installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/grpc_controller.proto");
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_build::configure()
        .build_client(false)
        .compile_protos(&["proto/grpc_controller.proto"], &["proto"])?;
    Ok(())
}
