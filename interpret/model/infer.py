"""Inference for gated stacks (LSTM, GRU, stacked tanh RNN): B lanes step together, no cache.

The training forward (layers.py) keeps every step's gates for its backward pass; recording,
ablation and lanes need only the arrays asked for. A chunk of S steps runs layer by layer: the
input terms of the whole chunk are one gather (layer 0) or one matrix product (deeper layers),
then each step is one (B, H) x (H, G*H) product and a few in-place ufuncs. The LSTM's gate row
is laid out so that its cell takes few numpy calls:

    row (B, 5H) = [o | i | f | g | c_prev]   sigmoid blocks o i f halved (layers.py's notes)
    [i f] * [g c_prev] is one multiply; c = the sum of its halves, written into the next row

Per step and lane: resets (a document starts in that lane: its state restarts at zeros) and
clamps (a unit held at a value after each step, as model.step does: ablation). The arithmetic
is the caller's dtype; tests compare float64 with Model.run and model.step.
"""
import numpy as np

from interpret.model import jit

GATES = {"lstm": ("i", "f", "o", "g"), "gru": ("r", "z", "n"), "rnn_stack": ()}  # recorded order
BLOCK = {"lstm": {"o": 0, "i": 1, "f": 2, "g": 3}, "gru": {"r": 0, "z": 1, "n": 2}, "rnn_stack": {}}
G = {"lstm": 4, "gru": 3, "rnn_stack": 1}
N_SIG = {"lstm": 3, "gru": 2, "rnn_stack": 0}  # sigmoid blocks, first in our column order
LSTM_ORDER = (2, 0, 1, 3)  # our blocks o i f g from the file's i f o g


SPLIT_LANES = 4  # lanes at most for the split LSTM loop: beyond, (B, H) x (H, 4H) BLAS products win
XZ_ROWS = 256  # rows of a deeper layer's input terms per product in the compiled loops (in cache)
TEAM_PATIENCE = 1 << 20  # yields a thread of the split loop waits for the others before it gives up
_NO_X = np.zeros((0, 0), np.int64)        # the compiled loops' "no characters": input terms
_NO_TABLE = np.zeros((0, 0), np.float32)  # are in the buffer already


class Net:
    """A stack's weights, prepared once for inference in one dtype.

    arch: lstm, gru or rnn_stack; a vanilla 'rnn' model runs as a one-layer rnn_stack.
    Per layer: Wx (D, G*H) (layer 0: `table` (V, G*H or 5H) = Wx + b, gathered by character),
    b (G*H,), Wh (H, G*H), columns in our block order, sigmoid blocks halved (WhT: its transpose,
    for the compiled loops' products with few lanes, kernels.rows_dot); bhn (H,) or None.
    """

    def __init__(self, arch, params, dtype=np.float32):
        if arch == "rnn":
            arch, params = "rnn_stack", {"L0_Wx": params["Wxh"].T, "L0_Wh": params["Whh"].T,
                                         "L0_b": params["bh"], "Why": params["Why"], "by": params["by"]}
        self.arch, self.dtype, self.layers = arch, np.dtype(dtype), []
        n = 0
        while f"L{n}_Wx" in params:
            self.layers.append(self._layer(params, n))
            n += 1
        self.Why, self.by = params["Why"].astype(dtype), params["by"].astype(dtype)
        self.H = self.layers[0]["Wh"].shape[0]

    def _layer(self, params, n):
        Wx, Wh, b = (np.asarray(params[f"L{n}_{k}"], dtype=np.float64) for k in ("Wx", "Wh", "b"))
        H = Wh.shape[0]
        if self.arch == "lstm":  # i f o g -> o i f g
            cols = np.concatenate([np.arange(k * H, (k + 1) * H) for k in LSTM_ORDER])
            Wx, Wh, b = Wx[:, cols], Wh[:, cols], b[cols]
        half = np.ones(Wh.shape[1])
        half[:N_SIG[self.arch] * H] = 0.5  # exact: a power of two
        Wx, Wh, b = Wx * half, Wh * half, b * half
        width = 5 * H if self.arch == "lstm" else Wh.shape[1]  # the LSTM row carries c_prev
        table = np.zeros((Wx.shape[0], width))
        table[:, :Wh.shape[1]] = Wx + b
        bhn = params.get(f"L{n}_bhn")
        cast = lambda a: np.ascontiguousarray(a, dtype=self.dtype)  # noqa: E731
        return {"Wx": cast(Wx), "b": cast(b), "Wh": cast(Wh), "WhT": cast(Wh.T), "table": cast(table),
                "bhn": None if bhn is None else cast(bhn)}

    def zero_state(self, B, shared_below=0):
        """Per layer (h, c) (LSTM) or (h,), each (B, H) zeros: the state at a document's start.
        Layers below shared_below get one lane: streams that differ only from there on share them."""
        k = 2 if self.arch == "lstm" else 1
        return [tuple(np.zeros((1 if n < shared_below else B, self.H), self.dtype) for _ in range(k))
                for n in range(len(self.layers))]


class Runner:
    """Runs a Net over chunks of (S, B) characters, keeping the buffers across chunks.

    run(X, state, ...) returns views into those buffers: they are overwritten by the next call.
    threads > 1: an LSTM with at most SPLIT_LANES lanes runs kernels.lstm_steps_team, each thread
    owning a block of units (numba's threads, at most as many as it has); should the team not
    meet (a thread starved for TEAM_PATIENCE yields), the rest runs on one thread.
    """

    def __init__(self, net, threads=1):
        self.net, self.bufs, self.threads = net, {}, max(1, int(threads))

    def _buf(self, name, shape):
        a = self.bufs.get(name)
        if a is None or a.shape[1:] != shape[1:] or a.shape[0] < shape[0]:
            a = self.bufs[name] = np.empty(shape, self.net.dtype)
        return a[:shape[0]]

    def run(self, X, state, want=None, resets=None, clamp=None):
        """X (S, B) character indices; state per layer as Net.zero_state (a layer whose state has
        B lanes while its input has one runs that input in every lane: ablation). Returns
        ({(layer, array): (S, B, H) view}, top h (S, B, H) view, new state (copies)).

        want(layer, array) -> bool: arrays returned (default all; h is always computed).
        resets {step s: lanes whose state restarts at zeros before step s};
        clamp {(layer, array): (lanes, cols, values)}: set after every step (c before h).
        """
        net, out, new, inp = self.net, {}, [], X
        S = X.shape[0]
        fast = net.dtype == np.float32 and jit.enabled()  # the compiled loops (model/jit.py)
        for n, w in enumerate(net.layers):
            B = state[n][0].shape[0]  # this layer's lanes; a one-lane input is shared by all
            chars = inp.dtype.kind in "iu"
            hs = self._inputs(n, w, inp, S, B, state[n], gather=not fast)
            if fast:  # the kernel reads layer 0's table rows itself
                step = {"lstm": self._lstm_jit, "gru": self._gru_jit, "rnn_stack": self._rnn_jit}[net.arch]
                X_in = np.ascontiguousarray(np.broadcast_to(inp, (S, B)), dtype=np.int64) if chars else _NO_X
                extra = step(n, w, S, hs, resets or {}, clamp or {}, X_in, w["table"] if chars else _NO_TABLE)
            else:
                step = {"lstm": self._lstm, "gru": self._gru, "rnn_stack": self._rnn}[net.arch]
                extra = step(n, w, S, hs, resets or {}, clamp or {})
            new.append((hs[S].copy(),) + ((extra[1][S].copy(),) if net.arch == "lstm" else ()))
            out[(n, "h")] = hs[1:]
            self._gates(n, extra, S, out, want)
            inp = hs[1:]
        return out, inp, new

    def _inputs(self, n, w, inp, S, B, st, gather=True):
        """Fill layer n's gate buffer with its chunk's input terms; hs[0] (and c) = the state.
        Characters are gathered from the table unless gather=False (the compiled loops do it)."""
        buf = self._buf(f"g{n}", (S + 1, B, w["table"].shape[1]))
        if inp.dtype.kind in "iu":  # characters: one gather of table rows
            if gather:
                np.take(w["table"], np.broadcast_to(inp, (S, B)), axis=0, out=buf[:S], mode="clip")
        else:  # the layer below's h (S, B or 1, H): one product for the chunk
            GH, b_in = w["Wh"].shape[1], inp.shape[1]
            if b_in == B and not gather:  # compiled: blocks of rows, each added while in cache
                A, out, k = inp.reshape(S * B, -1), buf[:S].reshape(S * B, -1), jit.kernels()
                if self.threads > 1:  # the rows split over the threads
                    blocks = jit.split_threads(self.threads)
                    k.input_terms_team(jit.gemm(), A, w["Wx"], w["b"], self._buf("xz", (blocks, XZ_ROWS, GH)),
                                       out, blocks)
                else:
                    k.input_terms(jit.gemm(), A, w["Wx"], w["b"], self._buf("xz", (XZ_ROWS, GH)), out)
            else:
                z = np.dot(inp.reshape(S * b_in, -1), w["Wx"], out=self._buf("xz", (S * b_in, GH)))
                np.add(z.reshape(S, b_in, GH), w["b"], out=buf[:S, :, :GH])
        hs = self._buf(f"h{n}", (S + 1, B, self.net.H))
        hs[0] = st[0]
        if self.net.arch == "lstm":
            buf[0, :, 4 * self.net.H:] = st[1]
        return hs

    def _gates(self, n, extra, S, out, want):
        """Add layer n's gate arrays (and the LSTM's c) to out as (S, B, H) views."""
        H, arch = self.net.H, self.net.arch
        buf = extra[0]
        if arch == "lstm" and (want is None or want(n, "c")):
            out[(n, "c")] = extra[1][1:]
        for name in GATES[arch]:
            if want is None or want(n, name):
                k = BLOCK[arch][name]
                out[(n, name)] = buf[:S, :, k * H:(k + 1) * H]

    def _lstm(self, n, w, S, hs, resets, clamp):
        H, buf = self.net.H, self.bufs[f"g{n}"][:S + 1]
        C = buf[:, :, 4 * H:]                                 # (S+1, B, H): C[t] = c_{t-1}
        G4, SIG, O = buf[:, :, :4 * H], buf[:, :, :3 * H], buf[:, :, :H]
        IF, GC = buf[:, :, H:3 * H], buf[:, :, 3 * H:]
        B = hs.shape[1]
        z = self._buf("z", (B, 4 * H))
        p, tc = self._buf("p", (B, 2 * H)), self._buf("tc", (B, H))
        Wh, dot, add, mul, tanh = w["Wh"], np.dot, np.add, np.multiply, np.tanh
        cc, ch = clamp.get((n, "c")), clamp.get((n, "h"))
        for t in range(S):
            saved = _reset(resets.get(t), hs[t], C[t])
            g4 = G4[t]
            dot(hs[t], Wh, out=z)                             # (B, 4H) h_{t-1} Wh
            add(g4, z, out=g4)
            tanh(g4, out=g4)
            sig = SIG[t]
            mul(sig, 0.5, out=sig)                            # sigmoid = (1 + tanh(x / 2)) / 2
            add(sig, 0.5, out=sig)
            mul(IF[t], GC[t], out=p)                          # [i g, f c_prev]
            c = C[t + 1]
            add(p[:, :H], p[:, H:], out=c)
            if cc is not None:
                c[cc[0], cc[1]] = cc[2]
            tanh(c, out=tc)
            mul(O[t], tc, out=hs[t + 1])
            if ch is not None:
                hs[t + 1][ch[0], ch[1]] = ch[2]
            _restore(saved, hs[t], C[t])
        return buf, C

    def _lstm_jit(self, n, w, S, hs, resets, clamp, X, table):
        """_lstm compiled (model/kernels.py): the same buffers, one call for the chunk; table[X]
        (layer 0) are the input terms, or (an empty table) the buffer holds them."""
        H, buf, B = self.net.H, self.bufs[f"g{n}"][:S + 1], hs.shape[1]
        z, mask = self._buf("z", (B, 4 * H)), jit.reset_mask(resets, S, B)
        cl, hl = clamp.get((n, "c")), clamp.get((n, "h"))
        blocks = jit.split_threads(self.threads) if self.threads > 1 and B <= SPLIT_LANES else 1
        start = 0
        if blocks > 1 and jit.yield_fn() is not None:  # the units split over a team of threads
            if "WT" not in w:  # row 4u + k: block k (o i f g) of unit u's column of Wh
                w["WT"] = np.ascontiguousarray(w["Wh"].T.reshape(4, H, H).transpose(1, 0, 2).reshape(4 * H, H))
            k, sync = jit.kernels(), np.zeros(2, np.int64)
            k.lstm_steps_team(X, table, buf, hs, w["WT"], z, mask, *jit.clamp_masks(cl, B, H),
                              *jit.clamp_masks(hl, B, H), blocks, sync, jit.yield_fn(), TEAM_PATIENCE)
            if not sync[0] & k.ABORT:
                return buf, buf[:, :, 4 * H:]
            start, self.threads = int(sync[1]) + 1, 1  # the team gave up: one thread from here on
        jit.kernels().lstm_steps(jit.gemm(), X[start:], table, buf[start:], hs[start:], w["Wh"], w["WhT"], z,
                                 mask[start:], *jit.clamp_arrays(cl), *jit.clamp_arrays(hl))
        return buf, buf[:, :, 4 * H:]

    def _gru_jit(self, n, w, S, hs, resets, clamp, X, table):
        H, A, B = self.net.H, self.bufs[f"g{n}"][:S], hs.shape[1]
        bhn = w["bhn"] if w["bhn"] is not None else np.zeros(H, np.float32)
        jit.kernels().gru_steps(jit.gemm(), X, table, A, hs, w["Wh"], w["WhT"], self._buf("z", (B, 3 * H)), bhn,
                                jit.reset_mask(resets, S, B), *jit.clamp_arrays(clamp.get((n, "h"))))
        return (A,)

    def _rnn_jit(self, n, w, S, hs, resets, clamp, X, table):
        A, B = self.bufs[f"g{n}"][:S], hs.shape[1]
        jit.kernels().rnn_steps(jit.gemm(), X, table, A, hs, w["Wh"], w["WhT"], self._buf("z", (B, self.net.H)),
                                jit.reset_mask(resets, S, B), *jit.clamp_arrays(clamp.get((n, "h"))))
        return (A,)

    def _gru(self, n, w, S, hs, resets, clamp):
        H, A = self.net.H, self.bufs[f"g{n}"][:S]
        B = hs.shape[1]
        hw, tmp = self._buf("z", (B, 3 * H)), self._buf("tc", (B, H))
        Wh, bhn, dot, add, mul, tanh = w["Wh"], w["bhn"], np.dot, np.add, np.multiply, np.tanh
        RZ, R, Z, N = A[:, :, :2 * H], A[:, :, :H], A[:, :, H:2 * H], A[:, :, 2 * H:]
        hrz, hn = hw[:, :2 * H], hw[:, 2 * H:]
        ch = clamp.get((n, "h"))
        for t in range(S):
            saved = _reset(resets.get(t), hs[t])
            dot(hs[t], Wh, out=hw)                            # (B, 3H)
            if bhn is not None:
                add(hn, bhn, out=hn)                          # PyTorch's b_hn, inside r * (...)
            rz = RZ[t]
            add(rz, hrz, out=rz)
            tanh(rz, out=rz)
            mul(rz, 0.5, out=rz)
            add(rz, 0.5, out=rz)
            nt = N[t]
            mul(R[t], hn, out=tmp)
            add(nt, tmp, out=nt)
            tanh(nt, out=nt)
            h = hs[t + 1]
            np.subtract(hs[t], nt, out=h)                     # h = n + z (h_prev - n)
            mul(h, Z[t], out=h)
            add(h, nt, out=h)
            if ch is not None:
                h[ch[0], ch[1]] = ch[2]
            _restore(saved, hs[t])
        return (A,)

    def _rnn(self, n, w, S, hs, resets, clamp):
        A = self.bufs[f"g{n}"][:S]
        z = self._buf("z", (hs.shape[1], self.net.H))
        Wh, ch = w["Wh"], clamp.get((n, "h"))
        for t in range(S):
            saved = _reset(resets.get(t), hs[t])
            np.dot(hs[t], Wh, out=z)
            h = hs[t + 1]
            np.add(A[t], z, out=h)
            np.tanh(h, out=h)
            if ch is not None:
                h[ch[0], ch[1]] = ch[2]
            _restore(saved, hs[t])
        return (A,)


def _reset(lanes, *arrays):
    """Zero the rows `lanes` of each (B, H) array for one step; returns what to put back."""
    if lanes is None:
        return None
    saved = [a[lanes].copy() for a in arrays]
    for a in arrays:
        a[lanes] = 0.0
    return lanes, saved


def _restore(saved, *arrays):
    """Undo _reset: the rows hold the previous step's recorded values."""
    if saved is not None:
        lanes, values = saved
        for a, v in zip(arrays, values):
            a[lanes] = v
