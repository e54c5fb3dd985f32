"""Tests of dlnotes.nn.callbacks, each callback run through the training loop's contract (`_replay`) on a stand-in model
with a real optimizer: the hook order, History, EarlyStopping's stop and restored weights, ModelCheckpoint's names and
saves, the learning-rate sequences of LearningRateScheduler and ReduceLROnPlateau, TerminateOnNaN, no host copy of the
batch loss except TerminateOnNaN's, mode "auto", missing monitored quantities, and bad arguments."""
import math
import warnings

import numpy as np
import pytest

from dlnotes.nn.callbacks import (Callback, CallbackList, History, EarlyStopping, ModelCheckpoint, LearningRateScheduler,
                                  ReduceLROnPlateau, TerminateOnNaN, _replay, _direction, _HOOKS)
from dlnotes.nn.metrics import _NoHostArray, HostCopyError, AUC, MeanAbsoluteError
from dlnotes.nn.optimization import StepDecay
from dlnotes.nn.optimizers import SGD, Adam


class Model:
    "The contract and nothing more: weights hold the index of the epoch that produced them, saves are recorded."
    def __init__(self, lr=0.1, optimizer=None):
        self.optimizer = optimizer if optimizer is not None else SGD(lr)
        self.stop_training, self.w, self.saves = False, -1.0, []

    def get_weights(self): return [np.array([self.w])]
    def set_weights(self, weights): self.w = float(weights[0][0])
    def save(self, path): self.saves += [("save", path)]
    def save_weights(self, path): self.saves += [("save_weights", path)]
    def epoch_done(self, epoch): self.w = float(epoch)


def _run(callbacks, monitored, key="val_loss", model=None, **kw):
    "Replay epochs whose logs hold `key` = each value of `monitored` (and a loss); returns (model, history)."
    model = model or Model()
    logs = [{"loss": 1.0, key: v} for v in monitored]
    return model, _replay(model, callbacks, logs, train=model.epoch_done, **kw)


class Recorder(Callback):
    "Records every hook call as (hook, arguments)."
    def __init__(self, calls): super().__init__(); self.calls = calls

    def __getattribute__(self, name):
        if name.startswith("on_"): return lambda *args: object.__getattribute__(self, "calls").append((name, args))
        return object.__getattribute__(self, name)


# ---- the hooks and the list -------------------------------------------------------------------------------------------

def test_the_base_class_has_every_hook_of_the_loop_and_does_nothing():
    assert set(_HOOKS) == {f"on_{w}_{e}" for w in ("train", "epoch", "test", "predict") for e in ("begin", "end")} | \
        {f"on_{w}_batch_{e}" for w in ("train", "test", "predict") for e in ("begin", "end")}
    c = Callback()
    for hook in _HOOKS:
        args = (0, {}) if "epoch" in hook or "batch" in hook else ({},)
        assert getattr(c, hook)(*args) is None
    c.set_params({"epochs": 3})
    assert c.params == {"epochs": 3} and c.model is None


def test_a_callback_list_passes_every_hook_to_every_callback_in_order():
    calls = []
    cbs = CallbackList([Recorder(calls), Recorder(calls)], model="m", params={"epochs": 1})
    assert all(c.model == "m" and c.params == {"epochs": 1} for c in cbs)
    for hook in _HOOKS:
        getattr(cbs, hook)(7, {"loss": 1.0})
    assert calls == [(hook, (7, {"loss": 1.0})) for hook in _HOOKS for _ in range(2)]
    assert CallbackList.on_epoch_end.__doc__ == "Call `on_epoch_end` of every callback, in order."


def test_replay_calls_the_hooks_in_the_loop_order_and_checks_stop_training_after_each_batch():
    calls = []

    class StopAtBatch1OfEpoch1(Callback):
        def on_epoch_begin(self, epoch, logs=None): self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == (1, 1): self.model.stop_training = True

    model = Model()
    rec = Recorder(calls)
    hist = _replay(model, [rec], [{"loss": 2.0}, {"loss": 1.0}, {"loss": 0.5}], [[3.0, 2.0, 1.0]] * 3)
    names = [c[0] for c in calls]
    assert names[:3] == ["on_train_begin", "on_epoch_begin", "on_train_batch_begin"]
    assert names.count("on_train_batch_end") == 9 and names.count("on_epoch_end") == 3 and names[-1] == "on_train_end"
    assert calls[-1][1] == ({"loss": 0.5},) and hist.epoch == [0, 1, 2]
    assert rec.params == {"epochs": 3, "steps": 3, "verbose": 0}

    calls.clear()
    stopper = StopAtBatch1OfEpoch1()
    hist = _replay(Model(), [Recorder(calls), stopper], [{"loss": 2.0}, {"loss": 1.0}, {"loss": 0.5}], [[3.0, 2.0, 1.0]] * 3)
    ends = [c[1][0] for c in calls if c[0] == "on_train_batch_end"]
    assert ends == [0, 1, 2, 0, 1] and hist.epoch == [0, 1]  # the epoch stops after batch 1, and still ends


def test_callback_list_arguments():
    assert CallbackList().callbacks == [] and CallbackList(None, add_history=True).history is not None
    h = History()
    assert CallbackList([h], add_history=True).callbacks == [h]  # no second History
    assert len(CallbackList(CallbackList([TerminateOnNaN()]))) == 1
    e = EarlyStopping()
    assert CallbackList(e).callbacks == [e]
    with pytest.raises(TypeError, match=r"callbacks\[0\] must be a Callback \(dlnotes.nn.callbacks.Callback\), got function"):
        CallbackList([lambda logs: None])
    with pytest.raises(TypeError, match="callbacks must be a list of Callback objects, got dict"):
        CallbackList({"a": e})
    with pytest.raises(ValueError, match="CallbackList: add_history must be True or False, got 'yes'"):
        CallbackList([], add_history="yes")


def test_logs_are_shared_so_history_sees_what_callbacks_add():
    class Adds(Callback):
        def on_epoch_end(self, epoch, logs=None): logs["twice"] = 2 * logs["loss"]
    _, hist = _run([Adds()], [0.5, 0.4], key="val_loss")
    assert hist.history["twice"] == [2.0, 2.0]


# ---- History ----------------------------------------------------------------------------------------------------------

def test_history_records_each_epoch_and_starts_afresh_each_training():
    h = History()
    model = Model()
    _replay(model, [h], [{"loss": 1.0}, {"loss": 0.5, "val_loss": 0.7}])
    assert (h.epoch, h.history) == ([0, 1], {"loss": [1.0, 0.5], "val_loss": [0.7]})
    _replay(model, [h], [{"loss": 0.2}])
    assert (h.epoch, h.history) == ([0], {"loss": [0.2]})
    h.append(5, {"loss": 0.1})
    assert repr(h) == "History(epochs=2, keys=['loss'])"


# ---- mode "auto" and missing quantities ---------------------------------------------------------------------------------

@pytest.mark.parametrize("monitor, want", [("loss", "min"), ("val_loss", "min"), ("val_accuracy", "max"), ("acc", "max"),
                                           ("val_binary_accuracy", "max"), ("precision", "max"), ("val_recall", "max"),
                                           ("auc", "max"), ("val_mae", "min"), ("mean_absolute_error", "min"),
                                           ("val_mse", "min"), ("categorical_crossentropy", "min"), ("val_custom_loss", "min")])
def test_auto_direction_from_the_name(monitor, want):
    assert _direction(monitor) == want


def test_auto_direction_from_the_models_metric_objects_and_refusal_of_unknown_names():
    class M(Model): metrics = [AUC(name="score"), MeanAbsoluteError(name="accuracy_gap")]
    assert _direction("val_score", M()) == "max" and _direction("accuracy_gap", M()) == "min"
    for cb in (EarlyStopping(monitor="val_f1"), ReduceLROnPlateau(monitor="f1"),
               ModelCheckpoint("w.npz", monitor="f1", save_best_only=True)):
        with pytest.raises(ValueError, match=f"{type(cb).__name__}: cannot tell whether '(val_)?f1' should be minimized or maximized; "
                                             "pass mode='min' or mode='max'"):
            _run([cb], [0.5], key="f1")
    _run([ModelCheckpoint("w.npz", monitor="f1")], [0.5], key="f1")  # every epoch saved: the direction is never needed
    _, hist = _run([EarlyStopping(monitor="f1", mode="max", patience=1)], [0.5, 0.6, 0.6, 0.7], key="f1")
    assert hist.epoch == [0, 1, 2]


@pytest.mark.parametrize("make", [lambda: EarlyStopping(patience=0), lambda: ReduceLROnPlateau(patience=0),
                                  lambda: ModelCheckpoint("w.npz", save_best_only=True)])
def test_a_missing_monitored_quantity_warns_naming_what_is_there_and_changes_nothing(make):
    model = Model()
    with pytest.warns(UserWarning, match=r"watches 'val_loss', which is not in the epoch logs "
                                         r"\(they hold: loss, accuracy(, learning_rate)?\); it does nothing this epoch"):
        hist = _replay(model, [make()], [{"loss": 1.0, "accuracy": 0.5}] * 3)
    assert len(hist.epoch) == 3 and model.optimizer.learning_rate == 0.1 and model.saves == []


# ---- EarlyStopping ------------------------------------------------------------------------------------------------------

def test_early_stopping_with_patience_2_stops_at_the_right_epoch_and_restores_the_best_weights():
    stop = EarlyStopping(patience=2, restore_best_weights=True)
    model, hist = _run([stop], [0.9, 0.7, 0.75, 0.72, 0.6, 0.55])
    assert hist.epoch == [0, 1, 2, 3] and stop.stopped_epoch == 3 and model.stop_training
    assert (stop.best_epoch, stop.best) == (1, 0.7) and model.w == 1.0
    model, hist = _run([EarlyStopping(patience=2)], [0.9, 0.7, 0.75, 0.72, 0.6, 0.55])
    assert model.w == 3.0  # not restored: the last epoch's weights


def test_early_stopping_restores_at_the_end_even_without_a_stop():
    model, hist = _run([EarlyStopping(patience=5, restore_best_weights=True)], [0.9, 0.5, 0.8, 0.7])
    assert hist.epoch == [0, 1, 2, 3] and model.w == 1.0


def test_early_stopping_prints_like_keras(capsys):
    _run([EarlyStopping(patience=1, restore_best_weights=True, verbose=1)], [0.9, 0.7, 0.8])
    assert capsys.readouterr().out == "Epoch 3: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"


def _expected_stop(values, patience, min_delta, mode, start):
    "Where EarlyStopping (no baseline) must stop: the first watched epoch e > 0 at least `patience` after the last improvement."
    best, last = None, None
    for e, v in enumerate(values):
        if e < start: continue
        if best is None or (v < best - min_delta if mode == "min" else v > best + min_delta):
            best, last = v, e
        elif e - last >= patience and e > 0:
            return e, last
    return None, last


@pytest.mark.parametrize("s", range(40))
def test_early_stopping_on_random_sequences(s):
    rng = np.random.default_rng(s)
    values = np.round(rng.random(12) + np.linspace(0.5, 0, 12) * rng.random(), 2).tolist()
    patience, min_delta, start = int(rng.integers(0, 4)), float(rng.choice([0, 0.02, 0.1])), int(rng.integers(0, 3))
    mode = str(rng.choice(["min", "max"]))
    stop = EarlyStopping(monitor="val_loss", patience=patience, min_delta=min_delta, mode=mode, start_from_epoch=start,
                         restore_best_weights=True)
    model, hist = _run([stop], values)
    e_stop, e_best = _expected_stop(values, patience, min_delta, mode, start)
    assert hist.epoch == list(range(len(values) if e_stop is None else e_stop + 1))
    assert stop.best_epoch == e_best and model.w == float(e_best)


def test_early_stopping_baseline_min_delta_and_max_mode():
    _, hist = _run([EarlyStopping(patience=1, baseline=0.5)], [0.9, 0.7, 0.75, 0.4, 0.3])
    assert hist.epoch == [0, 1, 2]  # no value beat the baseline: patience ran out
    _, hist = _run([EarlyStopping(patience=1, baseline=0.8)], [0.9, 0.7, 0.6, 0.65, 0.5])
    assert hist.epoch == [0, 1, 2, 3]
    _, hist = _run([EarlyStopping(patience=1, min_delta=0.15)], [1.0, 0.9, 0.8, 0.7])
    assert hist.epoch == [0, 1]  # 0.9 does not beat 1.0 by more than 0.15
    _, hist = _run([EarlyStopping(monitor="val_auc", patience=1)], [0.7, 0.8, 0.75], key="val_auc")
    assert hist.epoch == [0, 1, 2]
    _, hist = _run([EarlyStopping(patience=0)], [0.5, float("nan"), 0.4])
    assert hist.epoch == [0, 1]  # NaN never improves


def test_early_stopping_can_be_reused():
    stop = EarlyStopping(patience=1, restore_best_weights=True)
    _run([stop], [0.9, 0.7, 0.8])
    model, hist = _run([stop], [0.5, 0.6])
    assert hist.epoch == [0, 1] and (stop.best, stop.best_epoch) == (0.5, 0) and model.w == 0.0


# ---- ModelCheckpoint ----------------------------------------------------------------------------------------------------

EPOCHS = [{"loss": 0.8, "val_loss": v, "val_accuracy": a} for v, a in ((0.9, 0.6), (0.7, 0.7), (0.72, 0.72), (0.61, 0.71))]


def test_checkpoint_names_and_save_calls():
    model = Model()
    _replay(model, [ModelCheckpoint("w_{epoch:02d}_{val_loss:.2f}.npz", save_best_only=True, save_weights_only=True)], EPOCHS)
    assert model.saves == [("save_weights", "w_01_0.90.npz"), ("save_weights", "w_02_0.70.npz"), ("save_weights", "w_04_0.61.npz")]
    model = Model()
    _replay(model, [ModelCheckpoint("m{epoch}-{loss:.1f}.npz")], EPOCHS)
    assert model.saves == [("save", f"m{e}-0.8.npz") for e in (1, 2, 3, 4)]
    model = Model()
    _replay(model, [ModelCheckpoint("acc.npz", monitor="val_accuracy", save_best_only=True)], EPOCHS)
    assert len(model.saves) == 3
    model = Model()
    _replay(model, [ModelCheckpoint("low_acc.npz", monitor="val_accuracy", mode="min", save_best_only=True)], EPOCHS)
    assert len(model.saves) == 1


def test_checkpoint_keeps_its_best_across_trainings():
    model, ckpt = Model(), ModelCheckpoint("best.npz", save_best_only=True)
    _replay(model, [ckpt], EPOCHS)
    _replay(model, [ckpt], [{"val_loss": 0.65}, {"val_loss": 0.6}])
    assert len(model.saves) == 4 and ckpt.best == 0.6


def test_checkpoint_writes_real_files_and_creates_folders(tmp_path):
    class Saving(Model):
        def save(self, path):
            with open(path, "w") as f: f.write(str(self.w))

    model = Saving()
    _replay(model, [ModelCheckpoint(tmp_path / "ckpt" / "e{epoch}.txt")], EPOCHS[:2], train=model.epoch_done)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["e1.txt", "e2.txt"]
    assert (tmp_path / "ckpt" / "e2.txt").read_text() == "1.0"


def test_checkpoint_prints_like_keras(capsys):
    _replay(Model(), [ModelCheckpoint("w.npz", save_best_only=True, verbose=1)], EPOCHS[:3])
    assert capsys.readouterr().out.splitlines() == [
        "Epoch 1: val_loss improved from None to 0.90000, saving model to w.npz",
        "Epoch 2: val_loss improved from 0.90000 to 0.70000, saving model to w.npz",
        "Epoch 3: val_loss did not improve from 0.70000"]


def test_checkpoint_bad_paths():
    with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath 'w_\{val_f1\}.npz' names 'val_f1', which the epoch logs do not "
                                         r"hold \(they hold: epoch, loss, val_loss, val_accuracy\)"):
        _replay(Model(), [ModelCheckpoint("w_{val_f1}.npz")], EPOCHS)
    with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath 'w_\{loss:d\}.npz' cannot be filled with the epoch and the logs "
                                         r"\(Unknown format code 'd'"):
        _replay(Model(), [ModelCheckpoint("w_{loss:d}.npz")], EPOCHS)
    for positional in ("w_{}.npz", "w_{0}.npz"):
        with pytest.raises(ValueError, match="ModelCheckpoint: filepath must be a format string with named fields"):
            ModelCheckpoint(positional)
    with pytest.raises(ValueError, match="ModelCheckpoint: filepath must be a valid format string"):
        ModelCheckpoint("w_{epoch:02d.npz")
    for bad in (None, "", 3):
        with pytest.raises(ValueError, match=r"ModelCheckpoint: filepath must be a non-empty path \(str or os.PathLike\)"):
            ModelCheckpoint(bad)


# ---- learning rates ---------------------------------------------------------------------------------------------------

def test_learning_rate_scheduler_sets_the_rate_at_each_epoch_begin_and_logs_it():
    seen = []

    class Sees(Callback):
        def on_epoch_begin(self, epoch, logs=None): seen.append(self.model.optimizer.learning_rate)

    model = Model(lr=0.1)
    hist = _replay(model, [LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5 ** epoch), Sees()], [{"loss": 1.0}] * 4)
    assert seen == hist.history["learning_rate"] == [0.1, 0.05, 0.025, 0.0125]
    assert model.optimizer.current_learning_rate == 0.0125


def test_the_optimizer_steps_with_the_rate_a_callback_set():
    class Layer:
        name, trainable = "dense", True
        def __init__(self): self.params, self.grads = {"W": np.ones(2)}, {"W": np.ones(2)}

    model, layer = Model(lr=0.1), Layer()
    sched = LearningRateScheduler(lambda epoch, lr: 0.25)
    sched.set_model(model); sched.on_train_begin(); sched.on_epoch_begin(0)
    model.optimizer.step([layer])
    np.testing.assert_array_equal(layer.params["W"], [0.75, 0.75])


@pytest.mark.parametrize("value, shown", [(-0.1, "-0.1"), (0, "0"), (float("nan"), "nan"), ("fast", "'fast'"), (None, "None"),
                                          (True, "True")])
def test_learning_rate_scheduler_checks_what_the_schedule_returns(value, shown):
    with pytest.raises(ValueError, match=rf"LearningRateScheduler: the value of schedule\(0, lr\) must be a positive number, "
                                         rf"got {shown}"):
        _replay(Model(), [LearningRateScheduler(lambda e, lr: value)], [{}])


def test_learning_rate_scheduler_accepts_numpy_numbers_and_prints(capsys):
    model = Model()
    hist = _replay(model, [LearningRateScheduler(lambda e, lr: np.float32(0.5), verbose=1)], [{}, {}])
    assert hist.history["learning_rate"] == [0.5, 0.5] and type(model.optimizer.learning_rate) is float
    assert capsys.readouterr().out == "Epoch 1: LearningRateScheduler setting learning rate to 0.5.\n" \
                                      "Epoch 2: LearningRateScheduler setting learning rate to 0.5.\n"


@pytest.mark.parametrize("make", [lambda: LearningRateScheduler(lambda e, lr: lr), lambda: ReduceLROnPlateau()])
def test_a_schedule_object_or_no_optimizer_is_refused_before_the_first_epoch(make):
    calls = []
    for opt in (Adam(StepDecay(0.01)), SGD(StepDecay(0.1, 0.5, 2))):
        with pytest.raises(TypeError, match=f"{type(make()).__name__}: the optimizer's learning_rate is a schedule .*which a callback "
                                            "cannot change; give the optimizer a number as learning_rate"):
            _replay(Model(optimizer=opt), [make(), Recorder(calls)], [{"val_loss": 1.0}])
    assert calls == []  # refused in on_train_begin, before any other callback or epoch
    model = Model()
    model.optimizer = None
    with pytest.raises(ValueError, match="the model has no optimizer with a learning_rate; compile the model before training"):
        _replay(model, [make()], [{"val_loss": 1.0}])


def test_reduce_lr_on_plateau_sequence():
    model = Model(lr=0.1)
    plateau = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=1, min_lr=0.02)
    _, hist = _run([plateau], [1.0, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5, 0.5, 0.5], model=model)
    assert hist.history["learning_rate"] == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.02]
    assert model.optimizer.learning_rate == 0.02
    model = Model(lr=0.1)
    _, hist = _run([ReduceLROnPlateau(factor=0.5, patience=1)], [1.0, 0.99995, 0.9], model=model)
    assert hist.history["learning_rate"] == [0.1, 0.1, 0.05]  # 5e-5 is below min_delta = 1e-4


def _keras_style_lrs(values, lr, factor, patience, cooldown, min_lr, min_delta=1e-4):
    "The learning rates logged by Keras's ReduceLROnPlateau code (min mode), which decrements its cooldown before judging."
    best, wait, counter, out = math.inf, 0, 0, []
    for v in values:
        out.append(lr)
        if counter > 0: counter, wait = counter - 1, 0
        if v < best - min_delta: best, wait = v, 0
        elif counter == 0:
            wait += 1
            if wait >= patience and lr > min_lr:
                lr, counter, wait = max(lr * factor, min_lr), cooldown, 0
    return out


@pytest.mark.parametrize("s", range(30))
def test_reduce_lr_on_plateau_is_kerass_rule_with_cooldown_counting_the_epochs_it_says(s):
    rng = np.random.default_rng(s)
    values = np.round(1 + rng.random(25) * 0.2 - np.linspace(0, 0.3, 25) * rng.random(), 3).tolist()
    patience, cooldown, factor = int(rng.integers(0, 4)), int(rng.integers(0, 4)), float(rng.choice([0.1, 0.5]))
    _, hist = _run([ReduceLROnPlateau(factor=factor, patience=patience, cooldown=cooldown, min_lr=1e-3)], values)
    want = _keras_style_lrs(values, 0.1, factor, patience, cooldown + 1 if cooldown else 0, 1e-3)
    assert hist.history["learning_rate"] == want


def test_reduce_lr_on_plateau_max_mode_and_print(capsys):
    model = Model(lr=0.1)
    _, hist = _run([ReduceLROnPlateau(monitor="val_accuracy", factor=0.1, patience=1, verbose=1)], [0.5, 0.6, 0.6, 0.6, 0.7],
                   key="val_accuracy", model=model)
    assert np.allclose(hist.history["learning_rate"], [0.1, 0.1, 0.1, 0.01, 0.001], rtol=1e-12, atol=0)
    assert capsys.readouterr().out.splitlines() == ["Epoch 3: ReduceLROnPlateau reducing learning rate to 0.01.",
                                                    "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.001."]


# ---- TerminateOnNaN and host copies -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_terminate_on_nan_stops_after_the_first_bad_batch(bad, capsys):
    calls = []
    losses = [[0.9, 0.8, 0.7], [0.6, bad, 0.5], [0.4, 0.3, 0.2]]
    model = Model()
    hist = _replay(model, [TerminateOnNaN(), Recorder(calls)], [{"loss": 0.8}, {"loss": bad}, {"loss": 0.3}],
                   [[np.float32(J) for J in e] for e in losses])
    ends = [c[1][0] for c in calls if c[0] == "on_train_batch_end"]
    assert ends == [0, 1, 2, 0, 1] and hist.epoch == [0, 1] and model.stop_training
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"


def test_terminate_on_nan_ignores_logs_without_a_loss():
    t = TerminateOnNaN()
    t.set_model(Model())
    t.on_train_batch_end(0, {}); t.on_train_batch_end(0, None)
    assert not t.model.stop_training


@pytest.fixture
def guard():
    _NoHostArray.allowed, _NoHostArray.copies = False, 0
    yield _NoHostArray
    _NoHostArray.allowed, _NoHostArray.copies = False, 0


def _everything_but_terminate():
    return [EarlyStopping(monitor="loss", patience=5, restore_best_weights=True), ModelCheckpoint("w{epoch}.npz"),
            ModelCheckpoint("b.npz", monitor="loss", save_best_only=True), LearningRateScheduler(lambda e, lr: lr / 2),
            ReduceLROnPlateau(monitor="loss", patience=1), History()]


def test_no_callback_but_terminate_on_nan_copies_the_batch_loss_to_the_host(guard):
    losses = [[_NoHostArray(np.float32(J)) for J in (0.9, 0.8, 0.7)]] * 3
    hist = _replay(Model(), _everything_but_terminate(), [{"loss": 0.8}, {"loss": 0.7}, {"loss": 0.75}], losses)
    assert hist.epoch == [0, 1, 2] and guard.copies == 0
    with pytest.raises(HostCopyError):
        _replay(Model(), [TerminateOnNaN()], [{"loss": 0.8}], losses)
    guard.allowed = True
    _replay(Model(), _everything_but_terminate() + [TerminateOnNaN()], [{"loss": 0.8}, {"loss": 0.7}], losses)
    assert guard.copies == 6  # one per batch


# ---- bad arguments ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: EarlyStopping(monitor=3), "EarlyStopping: monitor must be a non-empty str naming a quantity of the epoch logs, got 3"),
    (lambda: EarlyStopping(patience=1.5), "EarlyStopping: patience must be a non-negative int, got 1.5"),
    (lambda: EarlyStopping(min_delta=float("inf")), "EarlyStopping: min_delta must be a non-negative number, got inf"),
    (lambda: EarlyStopping(mode="minimum"), "EarlyStopping: mode must be one of 'auto', 'min', 'max', got 'minimum'"),
    (lambda: EarlyStopping(baseline=float("nan")), "EarlyStopping: baseline must be a finite number, got nan"),
    (lambda: EarlyStopping(restore_best_weights="True"), "EarlyStopping: restore_best_weights must be True or False, got 'True'"),
    (lambda: EarlyStopping(start_from_epoch=-1), "EarlyStopping: start_from_epoch must be a non-negative int, got -1"),
    (lambda: EarlyStopping(verbose=True), "EarlyStopping: verbose must be an int in [0, 1], got True"),
    (lambda: ModelCheckpoint("w.npz", monitor=None), "ModelCheckpoint: monitor must be a non-empty str"),
    (lambda: ModelCheckpoint("w.npz", save_weights_only=0), "ModelCheckpoint: save_weights_only must be True or False, got 0"),
    (lambda: ModelCheckpoint("w.npz", mode="up"), "ModelCheckpoint: mode must be one of 'auto', 'min', 'max', got 'up'"),
    (lambda: LearningRateScheduler("cosine"), "schedule must be a function schedule(epoch, lr) -> lr, got 'cosine'"),
    (lambda: LearningRateScheduler(abs, verbose=-1), "LearningRateScheduler: verbose must be an int in [0, 1], got -1"),
    (lambda: ReduceLROnPlateau(factor=0), "factor must be a number in (0, 1) (the learning rate is multiplied by it), got 0"),
    (lambda: ReduceLROnPlateau(factor=1.5), "got 1.5"),
    (lambda: ReduceLROnPlateau(patience=-2), "ReduceLROnPlateau: patience must be a non-negative int, got -2"),
    (lambda: ReduceLROnPlateau(cooldown=0.5), "ReduceLROnPlateau: cooldown must be a non-negative int, got 0.5"),
    (lambda: ReduceLROnPlateau(min_lr=-1), "ReduceLROnPlateau: min_lr must be a non-negative number, got -1"),
    (lambda: ReduceLROnPlateau(min_delta="small"), "ReduceLROnPlateau: min_delta must be a non-negative number, got 'small'"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError) as e: make()
    assert message in str(e.value)


def test_params_must_be_a_dict():
    with pytest.raises(TypeError, match="params must be a dict, got tuple"):
        CallbackList([], params=("epochs", 3))
