//! With feature `python`: the crate's own tests, examples and benchmarks find
//! the libpython they were linked against through an rpath (a machine may
//! carry several libpython of the same version in the loader's path).
fn main() {
    #[cfg(feature = "python")]
    pyo3_build_config::add_libpython_rpath_link_args();
}
