//! A tiny static program that lets the build's `argv[0]` differ from the program's path.
//!
//! runc executes `process.args[0]` and passes that same string as `argv[0]`, but Nix runs
//! its builder with the builder's *base name* as `argv[0]` (busybox picks its applet from
//! it). So runc executes this shim instead, passed as file descriptor 3
//! (`/proc/self/fd/3`: it never appears in the sandbox's file system), with the arguments
//! `PROGRAM ARGV0 ARGS...`; it closes descriptor 3 and executes `PROGRAM` with
//! `ARGV0 ARGS...` and the same environment. If that fails it prints a message and exits
//! with status 1, as Nix's child process does when it cannot execute the builder.
//!
//! The machine code (x86_64 Linux, 113 bytes), from this assembly (Intel syntax):
//!
//! ```text
//! _start: mov edi, 3 ; mov eax, 3 ; syscall           close(3)
//!         mov rcx, [rsp]                              argc
//!         mov rdi, [rsp+16]                           argv[1]: the program
//!         lea rsi, [rsp+24]                           &argv[2]: its argv
//!         lea rdx, [rsp+rcx*8+16]                     envp
//!         mov eax, 59 ; syscall                       execve
//!         mov edi, 2 ; lea rsi, [rip+msg] ; mov edx, 39 ; mov eax, 1 ; syscall
//!         mov edi, 1 ; mov eax, 60 ; syscall          exit(1)
//! msg:    .ascii "tvix-build: cannot execute the builder\n"
//! ```

/// The shim's code, placed right after the ELF and program headers.
const X86_64_CODE: [u8; 113] = [
    0xbf, 0x03, 0x00, 0x00, 0x00, 0xb8, 0x03, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x0c, 0x24,
    0x48, 0x8b, 0x7c, 0x24, 0x10, 0x48, 0x8d, 0x74, 0x24, 0x18, 0x48, 0x8d, 0x54, 0xcc, 0x10, 0xb8,
    0x3b, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x18, 0x00,
    0x00, 0x00, 0xba, 0x27, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x01,
    0x00, 0x00, 0x00, 0xb8, 0x3c, 0x00, 0x00, 0x00, 0x0f, 0x05, b't', b'v', b'i', b'x', b'-', b'b',
    b'u', b'i', b'l', b'd', b':', b' ', b'c', b'a', b'n', b'n', b'o', b't', b' ', b'e', b'x', b'e',
    b'c', b'u', b't', b'e', b' ', b't', b'h', b'e', b' ', b'b', b'u', b'i', b'l', b'd', b'e', b'r',
    b'\n',
];

/// Where the shim is loaded.
const BASE: u64 = 0x40_0000;
const EHDR_SIZE: u16 = 64;
const PHDR_SIZE: u16 = 56;

/// The path runc executes: the shim as passed in descriptor 3.
pub const SHIM_PATH: &str = "/proc/self/fd/3";

/// The shim as an ELF executable for this machine, or `None` where there is none (the
/// build then gets the program's path as `argv[0]`).
pub fn elf() -> Option<Vec<u8>> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return None;
    }
    let code_at = u64::from(EHDR_SIZE + PHDR_SIZE);
    let total = code_at + X86_64_CODE.len() as u64;
    let mut e = Vec::with_capacity(total as usize);
    // ELF header: 64-bit, little-endian, version 1, System V ABI.
    e.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    e.extend_from_slice(&[0; 8]);
    e.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    e.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    e.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    e.extend_from_slice(&(BASE + code_at).to_le_bytes()); // entry point
    e.extend_from_slice(&u64::from(EHDR_SIZE).to_le_bytes()); // program headers
    e.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    e.extend_from_slice(&0u32.to_le_bytes()); // flags
    e.extend_from_slice(&EHDR_SIZE.to_le_bytes());
    e.extend_from_slice(&PHDR_SIZE.to_le_bytes());
    e.extend_from_slice(&1u16.to_le_bytes()); // one program header
    e.extend_from_slice(&[0; 6]); // no sections
                                  // One loadable, readable and executable segment: the whole file.
    e.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    e.extend_from_slice(&5u32.to_le_bytes()); // PF_R | PF_X
    e.extend_from_slice(&0u64.to_le_bytes()); // offset
    e.extend_from_slice(&BASE.to_le_bytes()); // virtual address
    e.extend_from_slice(&BASE.to_le_bytes()); // physical address
    e.extend_from_slice(&total.to_le_bytes()); // size in the file
    e.extend_from_slice(&total.to_le_bytes()); // size in memory
    e.extend_from_slice(&0x1000u64.to_le_bytes()); // alignment
    e.extend_from_slice(&X86_64_CODE);
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_shim_runs_a_program_with_another_argv0() {
        use std::os::unix::fs::PermissionsExt;
        use std::os::unix::process::CommandExt;
        let t = tempfile::tempdir().unwrap();
        let shim = t.path().join("shim");
        std::fs::write(&shim, elf().unwrap()).unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o555)).unwrap();
        // argv[0] of the shim is irrelevant; /bin/sh prints its own $0.
        let out = std::process::Command::new(&shim)
            .arg0("ignored")
            .args(["/bin/sh", "my-name", "-c", "echo $0 $FOO"])
            .env("FOO", "bar")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "my-name bar\n");
        let out = std::process::Command::new(&shim)
            .args(["/nonexistent", "x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "tvix-build: cannot execute the builder\n"
        );
    }
}
