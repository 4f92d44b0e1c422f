//! The BPF glue: the one module that knows about the skeleton, raw maps,
//! ring buffers and `unsafe`. Everything else talks to the kernel through
//! [`Session`], [`Shared`] and [`KernelChannel`].
//!
//! Lifecycle of a [`Session`]:
//!
//! ```text
//!  open skeleton ─▶ fill rodata (domains, CPU→domain, steal order, flags)
//!      ─▶ load (verifier) ─▶ create one ringbuf pair per domain, put them in
//!         the to_user / to_kern map-of-maps ─▶ workers start, each builds its
//!         KernelChannel on its own thread ─▶ register worker TIDs ─▶ attach
//!      ─▶ ... ─▶ drop: stop flag, detach, join the adopted threads, close.
//! ```
//!
//! Memory shared with BPF (the `.bss` map, mmapped) is reached through
//! [`Shared`], a raw pointer that stays valid while the skeleton lives. The
//! invariant that makes it sound: every thread holding a `Shared` is adopted
//! by the session ([`Session::adopt`]) and joined in its `Drop`, before the
//! skeleton is closed. Single words are read and written as atomics; the
//! exit record is read only after its `kind` is published (BPF writes it last).
//!
//! Records cross in both directions with no syscall per task: BPF reserves and
//! submits into a ringbuf that the worker reads from shared memory; the worker
//! reserves and submits into a user ringbuf that `ops.dispatch` drains.
//! Syscalls happen per batch: `sched_yield`, and `epoll_wait` when a worker
//! has nothing queued and sleeps until BPF sends more.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::CStr;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{
    Link, MapCore, MapFlags, MapHandle, MapType, OpenObject, PrintLevel, RingBuffer, RingBufferBuilder, UserRingBuffer,
};
use topology::{DomainId, Plan};

use crate::task::{Arrival, Dispatch, DomainMask, EnqueueSeq, Pid};
use crate::vruntime::{Vruntime, Weight};
use crate::worker::DomainChannel;

#[allow(
    clippy::all,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/main.skel.rs"));
}
use skel::types::{scx_exit_kind, sul_consts, sul_dispatch, sul_dispatch_flags, sul_enqueued, sul_register_args};
use skel::{MainSkel, MainSkelBuilder, OpenMainSkel};

// Constants come from intf.h through BTF, so they cannot drift from it.
const MAX_DOMAINS: usize = sul_consts::SUL_MAX_DOMAINS.0 as usize;
const MAX_CPUS: usize = sul_consts::SUL_MAX_CPUS.0 as usize;
const NO_DOMAIN: u32 = sul_consts::SUL_NO_DOMAIN.0;
const NO_LLC: u32 = sul_consts::SUL_NO_LLC.0;
const SCX_EXIT_ERROR: i32 = scx_exit_kind::SCX_EXIT_ERROR.0 as i32;
// A domain is a bit of a u64 mask on both sides.
const _: () = assert!(MAX_DOMAINS == DomainMask::MAX_DOMAINS);
// Flags of the kernel's own API (include/linux/sched/ext.h), which BTF
// carries only for the enums a BPF program uses.
const SCX_OPS_SWITCH_PARTIAL: u64 = 1 << 3;
const SCX_ECODE_ACT_RESTART: i64 = 1 << 48;

/// What the loader needs to know.
pub struct LoadOptions<'a> {
    pub plan: &'a Plan,
    pub partial: bool,
    /// Let BPF renew the slice of a task whose CPU found nothing else to
    /// run (see keep_last() in bpf/main.bpf.c); only with several domains
    /// or in partial mode.
    pub fast_path: bool,
    pub verbose: bool,
    /// Size of each domain's ring buffer in each direction (power of two).
    pub ringbuf_bytes: u32,
}

/// libbpf's messages of the current load, so that a verifier rejection can
/// be reported with its last lines. libbpf takes a plain fn, hence a static.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());
static VERBOSE: AtomicBool = AtomicBool::new(false);

fn libbpf_print(level: PrintLevel, msg: String) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprint!("{msg}");
    }
    if level != PrintLevel::Debug {
        if let Ok(mut log) = LIBBPF_LOG.lock() {
            log.push_str(&msg);
        }
    }
}

fn log_tail(lines: usize) -> String {
    let log = LIBBPF_LOG.lock().map(|l| l.clone()).unwrap_or_default();
    let all: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A loaded (and, after [`Session::attach`], attached) scheduler.
pub struct Session<'obj> {
    // Field order is drop order: threads are joined (in Drop) before the
    // link and skeleton go.
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    link: Option<Link>,
    channels: Vec<Option<ChannelMaps>>,
    shared: Shared,
    skel: MainSkel<'obj>,
}

/// One domain's pair of ring buffers, before its worker takes them.
pub struct ChannelMaps {
    dom: DomainId,
    to_user: MapHandle,
    to_kern: MapHandle,
}

impl<'obj> Session<'obj> {
    /// Opens, configures and loads the BPF program, and gives each domain
    /// its ring buffers; nothing runs until [`Session::attach`].
    pub fn load(open_object: &'obj mut MaybeUninit<OpenObject>, opts: &LoadOptions) -> Result<Session<'obj>> {
        VERBOSE.store(opts.verbose, Ordering::Relaxed);
        if let Ok(mut log) = LIBBPF_LOG.lock() {
            log.clear();
        }
        libbpf_rs::set_print(Some((PrintLevel::Debug, libbpf_print)));

        let nr_possible = check_limits(opts.plan)?;
        let mut open = MainSkelBuilder::default()
            .open(open_object)
            .context("opening the BPF object (libbpf)")?;
        fill_rodata(&mut open, opts, nr_possible)?;
        configure_ops(&mut open, opts);
        let mut skel = load_verified(open, opts.verbose)?;
        let channels = install_channels(&mut skel, opts)?;

        let bss = skel
            .maps
            .bss_data
            .as_deref_mut()
            .context("the BPF object has no .bss")?;
        let shared = Shared {
            bss: bss as *mut skel::types::bss,
        };
        Ok(Session {
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            link: None,
            channels,
            shared,
            skel,
        })
    }

    /// The ring buffers of domain `dom`, for its worker (once).
    pub fn take_channel(&mut self, dom: DomainId) -> Option<ChannelMaps> {
        self.channels.get_mut(dom.0 as usize)?.take()
    }

    pub fn shared(&self) -> Shared {
        self.shared
    }

    /// The flag adopted threads watch; set when the session ends.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The session joins `t` before it unloads (see the module doc).
    pub fn adopt(&mut self, t: JoinHandle<()>) {
        self.threads.push(t);
    }

    /// What each worker thread uses to tell BPF who it is (before attach:
    /// BPF recognises the workers when it first sees each task).
    pub fn registrar(&self) -> Result<Registrar> {
        let fd = self
            .skel
            .progs
            .sul_register
            .as_fd()
            .try_clone_to_owned()
            .context("duplicating the registration program's fd")?;
        Ok(Registrar(fd))
    }

    pub fn attach(&mut self) -> Result<()> {
        let link = self.skel.maps.sul_ops.attach_struct_ops().map_err(|e| {
            let other = std::fs::read_to_string("/sys/kernel/sched_ext/root/ops").unwrap_or_default();
            let other = other.trim();
            if !other.is_empty() && other != "scx_userland" {
                anyhow::anyhow!("another sched_ext scheduler ({other}) is attached; stop it first")
            } else {
                anyhow::anyhow!("attaching the scheduler failed: {e}\n{}", log_tail(10))
            }
        })?;
        self.link = Some(link);
        Ok(())
    }

    /// Detaches (if attached) and joins adopted threads; also done on drop.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.link.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs BPF's sul_register on the calling thread, which records its
/// kernel-wide thread and process ids. The ids this process sees itself
/// (gettid, getpid) are those of its pid namespace, which BPF never sees: in
/// a container they differ, and the workers went unrecognised.
pub struct Registrar(OwnedFd);

impl Registrar {
    /// The calling thread is domain `dom`'s worker.
    pub fn register_worker(&self, dom: DomainId) -> Result<()> {
        let mut args = sul_register_args { dom: dom.0 };
        // SAFETY: zeroed is a valid bpf_test_run_opts (all integers and
        // null pointers); ctx_in points to `args`, which outlives the call,
        // and the kernel only reads ctx_size_in bytes of it.
        let rc = unsafe {
            let mut opts = std::mem::zeroed::<libbpf_rs::libbpf_sys::bpf_test_run_opts>();
            opts.sz = size_of::<libbpf_rs::libbpf_sys::bpf_test_run_opts>() as _;
            opts.ctx_in = std::ptr::addr_of_mut!(args).cast();
            opts.ctx_size_in = size_of::<sul_register_args>() as u32;
            libbpf_rs::libbpf_sys::bpf_prog_test_run_opts(std::os::fd::AsRawFd::as_raw_fd(&self.0), &mut opts)
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc))
                .with_context(|| format!("registering domain {dom}'s worker with BPF (BPF_PROG_RUN)"));
        }
        Ok(())
    }
}

/// The plan and machine must fit BPF's fixed-size arrays; returns the
/// number of possible CPUs.
fn check_limits(plan: &Plan) -> Result<usize> {
    let nr_domains = plan.domains.len();
    if nr_domains == 0 || nr_domains > MAX_DOMAINS {
        bail!("{nr_domains} domains: scx-userland supports 1 to {MAX_DOMAINS}");
    }
    let nr_possible = libbpf_rs::num_possible_cpus().context("reading the number of possible CPUs")?;
    if nr_possible > MAX_CPUS {
        bail!("this machine has {nr_possible} possible CPUs; scx-userland supports up to {MAX_CPUS}");
    }
    Ok(nr_possible)
}

/// The program's constants: the plan (CPU to domain, steal order), the
/// vruntime parameters shared with user space, and the modes.
fn fill_rodata(open: &mut OpenMainSkel, opts: &LoadOptions, nr_possible: usize) -> Result<()> {
    let plan = opts.plan;
    let nr_domains = plan.domains.len();
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("the BPF object has no .rodata")?;
    rodata.nr_domains = nr_domains as u32;
    rodata.nr_possible_cpus = nr_possible as u32;
    rodata.slice_ns = crate::vruntime::SLICE_NS;
    rodata.min_slice_ns = crate::vruntime::MIN_SLICE_NS;
    rodata.max_slice_ns = crate::vruntime::MAX_SLICE_NS;
    rodata.sleeper_credit_ns = crate::vruntime::SLEEPER_CREDIT_NS;
    rodata.starve_grace_ns = crate::rescue::GRACE_NS;
    rodata.wakeup_gran_ns = crate::vruntime::WAKEUP_GRAN_NS;
    rodata.min_debt_ns = crate::vruntime::MIN_DEBT_NS;
    rodata.max_wait_ns = crate::vruntime::MAX_DEBTOR_WAIT_NS;
    // In partial mode the workers are not SCHED_EXT tasks, so BPF cannot
    // hold and release them: they sleep in epoll and BPF wakes them.
    rodata.sleeping_workers = opts.partial;
    // Without it every slice end is a trip through the worker while
    // the CPU idles: beside one hog per CPU, 2% idle with one domain,
    // 9-16% with several, 35% in partial mode (README, "The fast path").
    rodata.fast_path = opts.fast_path;
    for cpu in 0..nr_possible {
        // CPUs outside the plan (offline, or not ours to use) still run
        // sched_ext tasks; they take work from domain 0.
        rodata.cpu_to_dom[cpu] = plan.domain_of_cpu(cpu as u32).map_or(0, |d| d.0);
        rodata.cpu_to_llc[cpu] = plan.llc_of_cpu(cpu as u32).unwrap_or(NO_LLC);
    }
    for d in &plan.domains {
        let row = &mut rodata.steal_order[d.id.0 as usize];
        row.fill(NO_DOMAIN);
        for (i, other) in plan.steal_order(d.id).into_iter().enumerate() {
            row[i] = other.0;
        }
    }
    Ok(())
}

/// The sched_ext ops' own settings: watchdog, partial mode, hotplug.
fn configure_ops(open: &mut OpenMainSkel, opts: &LoadOptions) {
    let ops = open.struct_ops.sul_ops_mut();
    ops.timeout_ms = crate::vruntime::WATCHDOG_TIMEOUT_MS;
    if opts.partial {
        ops.flags |= SCX_OPS_SWITCH_PARTIAL;
    }
    // A CPU hotplug between here and attach makes the kernel refuse us
    // with a restart request instead of running on a stale plan.
    if let Ok(seq) = std::fs::read_to_string("/sys/kernel/sched_ext/hotplug_seq") {
        ops.hotplug_seq = seq.trim().parse().unwrap_or(0);
    }
}

/// Loads through the verifier; a rejection carries the log's last lines.
fn load_verified<'obj>(open: OpenMainSkel<'obj>, verbose: bool) -> Result<MainSkel<'obj>> {
    open.load().map_err(|e| {
        let lines = if verbose { 10_000 } else { 25 };
        anyhow::anyhow!(
            "the kernel rejected the BPF program ({e}); last lines of the verifier/libbpf log{}:\n{}",
            if verbose { "" } else { " (all of it with -v)" },
            log_tail(lines)
        )
    })
}

/// Creates each domain's pair of ring buffers and puts them in the
/// to_user / to_kern map-of-maps, where BPF finds them by domain.
fn install_channels(skel: &mut MainSkel, opts: &LoadOptions) -> Result<Vec<Option<ChannelMaps>>> {
    let mut channels = Vec::with_capacity(opts.plan.domains.len());
    for d in &opts.plan.domains {
        let key = d.id.0.to_ne_bytes();
        let to_user = create_ringbuf(MapType::RingBuf, "sul_to_user", opts.ringbuf_bytes)?;
        let to_kern = create_ringbuf(MapType::UserRingBuf, "sul_to_kern", opts.ringbuf_bytes)?;
        for (outer, inner) in [(&mut skel.maps.to_user, &to_user), (&mut skel.maps.to_kern, &to_kern)] {
            let fd = inner.as_fd();
            let fd = std::os::fd::AsRawFd::as_raw_fd(&fd) as u32;
            outer
                .update(&key, &fd.to_ne_bytes(), MapFlags::ANY)
                .with_context(|| format!("installing domain {}'s ring buffer", d.id))?;
        }
        channels.push(Some(ChannelMaps {
            dom: d.id,
            to_user,
            to_kern,
        }));
    }

    Ok(channels)
}

fn create_ringbuf(ty: MapType, name: &str, bytes: u32) -> Result<MapHandle> {
    let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    MapHandle::create(ty, Some(name), 0, 0, bytes, &opts)
        .with_context(|| format!("creating a {bytes}-byte {ty:?} map (size must be a power of two >= page size)"))
}

/// Why and how the kernel ended the scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitInfo {
    pub kind: i32,
    pub exit_code: i64,
    pub reason: String,
    pub msg: String,
    /// The kernel's dump of the CPUs and the tasks waiting, on an error exit.
    pub dump: String,
}

impl ExitInfo {
    /// The kernel asks for a restart, e.g. after a CPU hotplug.
    pub fn wants_restart(&self) -> bool {
        self.exit_code & SCX_ECODE_ACT_RESTART != 0
    }

    pub fn is_error(&self) -> bool {
        self.kind >= SCX_EXIT_ERROR
    }
}

/// Counters BPF keeps for one domain: `struct sul_dom_stats` in intf.h is
/// their one definition, and the skeleton brings it here field for field.
/// Every field is a u64 counter, which `domain_stats` and `Add` rely on.
pub use skel::types::sul_dom_stats as BpfDomainStats;

const DOM_STATS_WORDS: usize = size_of::<BpfDomainStats>() / 8;
const _: () = assert!(size_of::<BpfDomainStats>() == DOM_STATS_WORDS * 8);

impl BpfDomainStats {
    fn from_words(w: [u64; DOM_STATS_WORDS]) -> BpfDomainStats {
        // SAFETY: repr(C) struct of DOM_STATS_WORDS u64s (asserted above).
        unsafe { std::mem::transmute(w) }
    }

    fn words(self) -> [u64; DOM_STATS_WORDS] {
        // SAFETY: as in from_words.
        unsafe { std::mem::transmute(self) }
    }
}

/// Field-wise sums, for totals over domains and for differences over time.
impl std::ops::Add for BpfDomainStats {
    type Output = BpfDomainStats;
    fn add(self, o: BpfDomainStats) -> BpfDomainStats {
        let (a, b) = (self.words(), o.words());
        BpfDomainStats::from_words(std::array::from_fn(|i| a[i].wrapping_add(b[i])))
    }
}

impl BpfDomainStats {
    /// What the counters gained since `earlier`.
    pub fn since(self, earlier: BpfDomainStats) -> BpfDomainStats {
        let (a, b) = (self.words(), earlier.words());
        BpfDomainStats::from_words(std::array::from_fn(|i| a[i].wrapping_sub(b[i])))
    }
}

impl PartialEq for BpfDomainStats {
    fn eq(&self, o: &BpfDomainStats) -> bool {
        self.words() == o.words()
    }
}
impl Eq for BpfDomainStats {}

/// # Safety
/// `p` must point into the live bss and be aligned for u64.
unsafe fn atomic_u64<'a>(p: *mut u64) -> &'a AtomicU64 {
    unsafe { AtomicU64::from_ptr(p) }
}

/// # Safety
/// `p` must point into the live bss and be aligned for u32.
unsafe fn atomic_u32<'a>(p: *mut u32) -> &'a AtomicU32 {
    unsafe { AtomicU32::from_ptr(p) }
}

/// # Safety
/// `p` must point into the live bss and be aligned for i32.
unsafe fn atomic_i32<'a>(p: *mut i32) -> &'a AtomicI32 {
    unsafe { AtomicI32::from_ptr(p) }
}

/// A view of the BPF program's global variables, usable from any thread.
/// Sound while the Session lives: see the module doc.
#[derive(Clone, Copy)]
pub struct Shared {
    bss: *mut skel::types::bss,
}

// SAFETY: the pointer targets the mmapped .bss, which outlives every thread
// holding a copy (they are joined before the skeleton closes), and every
// access below goes through atomics of the field's size.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Tells BPF how many tasks domain `dom` holds in user space, the
    /// vruntime of the one it would hand out first, and how many decisions
    /// it has sent, ever (`struct sul_dom_user` in intf.h).
    pub fn publish_user_state(&self, dom: DomainId, queued: u64, head: Vruntime, sent: u64) {
        let i = dom.0 as usize % MAX_DOMAINS;
        // SAFETY: in-bounds fields of the live bss.
        unsafe {
            let u = std::ptr::addr_of_mut!((*self.bss).dom_users[i]);
            // The head before the depth: BPF compares with the head only
            // when the depth says there is one.
            atomic_u64(std::ptr::addr_of_mut!((*u).head_vtime)).store(head.0, Ordering::Relaxed);
            atomic_u64(std::ptr::addr_of_mut!((*u).nr_queued)).store(queued, Ordering::Release);
            atomic_u64(std::ptr::addr_of_mut!((*u).nr_sent)).store(sent, Ordering::Relaxed);
        }
    }

    /// Whether BPF found domain `dom` starved (rescue.rs).
    pub fn starved(&self, dom: DomainId) -> bool {
        let i = dom.0 as usize % MAX_DOMAINS;
        // SAFETY: in-bounds field of the live bss.
        unsafe { atomic_u32(std::ptr::addr_of_mut!((*self.bss).dom_starved[i])) }.load(Ordering::Acquire) != 0
    }

    /// Times BPF's heartbeat timer has fired.
    pub fn heartbeats(&self) -> u64 {
        // SAFETY: field of the live bss.
        unsafe { atomic_u64(std::ptr::addr_of_mut!((*self.bss).nr_heartbeats)) }.load(Ordering::Relaxed)
    }

    /// Domain `dom`'s vruntime clock (`struct sul_dom_clock` in intf.h).
    pub fn clock(&self, dom: DomainId) -> Vruntime {
        let i = dom.0 as usize % MAX_DOMAINS;
        // SAFETY: in-bounds field of the live bss.
        Vruntime(
            unsafe { atomic_u64(std::ptr::addr_of_mut!((*self.bss).dom_clocks[i].vtime_now)) }.load(Ordering::Relaxed),
        )
    }

    /// Domain `dom`'s counters, each word read atomically (BPF updates
    /// them with atomic adds while we read).
    pub fn domain_stats(&self, dom: DomainId) -> BpfDomainStats {
        let i = dom.0 as usize % MAX_DOMAINS;
        // SAFETY: in-bounds, u64-aligned words of the live bss.
        unsafe {
            let base = std::ptr::addr_of_mut!((*self.bss).dom_stats[i]).cast::<u64>();
            BpfDomainStats::from_words(std::array::from_fn(|w| atomic_u64(base.add(w)).load(Ordering::Relaxed)))
        }
    }

    /// The kernel's exit record, once ops.exit has run.
    pub fn exit_info(&self) -> Option<ExitInfo> {
        // SAFETY: in-bounds fields of the live bss; `kind` is published last
        // (atomic exchange in BPF), so the rest is complete once it is set.
        unsafe {
            let ei = std::ptr::addr_of_mut!((*self.bss).exit_info);
            let kind = atomic_i32(std::ptr::addr_of_mut!((*ei).kind)).load(Ordering::Acquire);
            if kind == 0 {
                return None;
            }
            let exit_code = atomic_u64(std::ptr::addr_of_mut!((*ei).exit_code).cast()).load(Ordering::Acquire);
            let text = |p: *const i8, len: usize| {
                let bytes = std::slice::from_raw_parts(p.cast::<u8>(), len);
                CStr::from_bytes_until_nul(bytes)
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            Some(ExitInfo {
                kind,
                exit_code: exit_code as i64,
                reason: text(std::ptr::addr_of!((*ei).reason).cast(), (*ei).reason.len()),
                msg: text(std::ptr::addr_of!((*ei).msg).cast(), (*ei).msg.len()),
                dump: text(std::ptr::addr_of!((*ei).dump).cast(), (*ei).dump.len()),
            })
        }
    }
}

/// A worker's two ring buffers, built on the worker's own thread (libbpf's
/// ring buffer objects are not Send).
pub struct KernelChannel {
    dom: DomainId,
    shared: Shared,
    rb: RingBuffer<'static>,
    urb: UserRingBuffer,
    staging: Rc<RefCell<Vec<Arrival>>>,
    malformed: Rc<RefCell<u64>>,
    /// Decisions submitted to to_kern since the session started.
    sent: u64,
    _maps: ChannelMaps,
}

impl KernelChannel {
    pub fn new(maps: ChannelMaps, shared: Shared, capacity: usize) -> Result<KernelChannel> {
        let staging = Rc::new(RefCell::new(Vec::with_capacity(capacity)));
        let malformed = Rc::new(RefCell::new(0u64));
        let mut builder = RingBufferBuilder::new();
        let (st, bad) = (staging.clone(), malformed.clone());
        builder
            .add(&maps.to_user, move |data: &[u8]| {
                match decode_enqueued(data) {
                    Some(a) => st.borrow_mut().push(a),
                    None => *bad.borrow_mut() += 1,
                }
                0
            })
            .context("registering the kernel-to-user ring buffer")?;
        let rb = builder.build().context("building the kernel-to-user ring buffer")?;
        let urb = UserRingBuffer::new(&maps.to_kern).context("mapping the user-to-kernel ring buffer")?;
        Ok(KernelChannel {
            dom: maps.dom,
            shared,
            rb,
            urb,
            staging,
            malformed,
            sent: 0,
            _maps: maps,
        })
    }

    fn flush(&self, sink: &mut dyn FnMut(&Arrival)) -> usize {
        let mut staged = self.staging.borrow_mut();
        let n = staged.len();
        for a in staged.iter() {
            sink(a);
        }
        staged.clear();
        n
    }

    /// Puts one record into to_kern; false when it is full.
    fn submit(&mut self, rec: &sul_dispatch) -> bool {
        let Ok(mut sample) = self.urb.reserve(size_of::<sul_dispatch>()) else {
            return false;
        };
        // SAFETY: sul_dispatch is plain old data of exactly this size.
        let bytes =
            unsafe { std::slice::from_raw_parts((rec as *const sul_dispatch).cast::<u8>(), size_of::<sul_dispatch>()) };
        sample.copy_from_slice(bytes);
        self.urb.submit(sample).is_ok()
    }
}

impl DomainChannel for KernelChannel {
    fn malformed(&self) -> u64 {
        *self.malformed.borrow()
    }

    fn receive(&mut self, sink: &mut dyn FnMut(&Arrival)) -> usize {
        // consume() reads shared memory only; errors mean a callback failed,
        // which ours never does.
        let _ = self.rb.consume();
        self.flush(sink)
    }

    fn wait(&mut self, timeout: Duration, sink: &mut dyn FnMut(&Arrival)) -> usize {
        // EINTR (a signal) just ends the wait early.
        let _ = self.rb.poll(timeout);
        self.flush(sink)
    }

    fn send(&mut self, d: &Dispatch) -> bool {
        let ok = self.submit(&sul_dispatch {
            pid: d.pid.0,
            seq: d.seq.0,
            vruntime: d.vruntime.0,
            charged_exec_runtime: d.charged_exec_runtime,
            slice_ns: d.slice_ns,
            dom: d.dom.0,
            ..Default::default()
        });
        self.sent += u64::from(ok);
        ok
    }

    fn wake_peer(&mut self, peer: DomainId) -> bool {
        // Not a decision: BPF counts it neither as a dispatch nor as stale,
        // so it stays out of `sent`.
        self.submit(&sul_dispatch {
            dom: peer.0,
            flags: sul_dispatch_flags::SUL_DISPATCH_WAKE.0,
            ..Default::default()
        })
    }

    fn kernel_backlog(&self) -> u64 {
        let s = self.shared.domain_stats(self.dom);
        let in_channel = self.sent.saturating_sub(s.dispatches + s.stale);
        // Only our own decisions: the DSQ also holds tasks kept in the
        // kernel, and counting them could hold back our tasks for good.
        // (`taken` is read after `dispatches`, so it may be ahead by a few.)
        in_channel + s.dispatches.saturating_sub(s.taken)
    }

    fn publish_queued(&mut self, n: u64, head: Vruntime) {
        self.shared.publish_user_state(self.dom, n, head, self.sent);
    }

    fn clock(&self) -> Vruntime {
        self.shared.clock(self.dom)
    }

    fn yield_cpu(&mut self) {
        let _ = nix::sched::sched_yield();
    }
}

fn decode_enqueued(data: &[u8]) -> Option<Arrival> {
    if data.len() < size_of::<sul_enqueued>() {
        return None;
    }
    // SAFETY: the length was checked; sul_enqueued is plain old data and
    // read_unaligned makes no alignment assumption.
    let e: sul_enqueued = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    Some(Arrival {
        pid: Pid(e.pid),
        seq: EnqueueSeq(e.seq),
        sum_exec_runtime: e.sum_exec_runtime,
        vruntime: Vruntime(e.vruntime),
        charged_exec_runtime: e.charged_exec_runtime,
        vruntime_dom: (e.vruntime_dom != NO_DOMAIN).then_some(DomainId(e.vruntime_dom)),
        weight: Weight::new(e.weight),
        allowed: DomainMask(e.allowed_domains),
        cpu: e.cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layouts_match_intf_h() {
        // The sizes intf.h implies; a mismatch means intf.h and the
        // generated skeleton disagree with what the kernel side sends.
        assert_eq!(size_of::<sul_enqueued>(), 64);
        assert_eq!(size_of::<sul_dispatch>(), 48);
    }

    #[test]
    fn decodes_a_record_and_rejects_a_short_one() {
        let e = sul_enqueued {
            pid: 4_194_304,
            seq: 7 << 32 | 9,
            sum_exec_runtime: 1_000,
            vruntime: 77,
            charged_exec_runtime: 500,
            allowed_domains: 0b101,
            weight: 0,
            cpu: 3,
            dom: 2,
            vruntime_dom: NO_DOMAIN,
            ..Default::default()
        };
        // SAFETY: plain old data viewed as bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts((&e as *const sul_enqueued).cast::<u8>(), size_of::<sul_enqueued>()) };
        let a = decode_enqueued(bytes).expect("a full record decodes");
        assert_eq!(a.pid, Pid(4_194_304));
        assert_eq!(a.seq, EnqueueSeq(7 << 32 | 9));
        assert_eq!(a.weight.get(), 3, "weight 0 is clamped to SCHED_IDLE's");
        assert_eq!(a.vruntime_dom, None);
        assert!(a.allowed.contains(DomainId(2)) && !a.allowed.contains(DomainId(1)));
        assert!(decode_enqueued(&bytes[..40]).is_none());
    }
}
