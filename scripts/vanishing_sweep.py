"""Run the accuracy-against-T sweep of nbs/41e_vanishing.ipynb and save it to weights/vanishing_sweep.json.

For every cell (SimpleRNN, GRU, LSTM with Keras's initial biases, and GRU and LSTM with the gate that carries the state
opened, `gate_bias=3`) and every length T, `train_recall(cell, T, epochs, gate_bias=...)` of dlnotes.seq.vanishing
trains `recall_model` (32 units, then Dense(4)) with Adam(0.01) on 2,048 sequences of `recall_task` and records the
accuracy on 512 held-out sequences after every epoch, and the gradient norms ‖∂J/∂a⟨T−k⟩‖ by distance k on 256 of
them, before and after training. Nothing is chosen by the held-out accuracy. The JSON holds the configuration and one
record per run; the notebook loads it and plots it.

    python scripts/vanishing_sweep.py [--epochs 8] [--lengths 10 20 40 80] [--out weights/vanishing_sweep.json] [--threads N]
"""
import argparse, json, time
from pathlib import Path

from dlnotes.backend import set_num_threads
from dlnotes.seq.vanishing import train_recall

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("SimpleRNN", None), ("GRU", None), ("LSTM", None), ("GRU", 3.0), ("LSTM", 3.0)]  # (cell, gate_bias)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--lengths", type=int, nargs="+", default=[10, 20, 40, 80])
    ap.add_argument("--out", default=str(ROOT / "weights" / "vanishing_sweep.json"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    records, t0 = [], time.perf_counter()
    for T in args.lengths:
        for cell, gate_bias in RUNS:
            r = train_recall(cell, T, epochs=args.epochs, gate_bias=gate_bias)
            records.append(r)
            print(f"T={T:3d} {cell:9s} gate_bias={gate_bias}: held-out accuracy {r['val_accuracy'][-1]:.3f} "
                  f"({r['seconds']:.0f} s)", flush=True)
    out = {"config": {"epochs": args.epochs, "lengths": args.lengths, "units": 32, "n_symbols": 4, "n_train": 2048,
                      "n_test": 512, "learning_rate": 0.01, "batch_size": 64, "runs": [list(r) for r in RUNS]},
           "records": records, "seconds": time.perf_counter() - t0}
    Path(args.out).write_text(json.dumps(out))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
