"""Fine-tuning page: start, live plots, stop, export — with a fake trainer of the engine's shape."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.main_window import MainWindow
from app.settings import Settings
from app.workers.train_worker import FineTuneParams, trainer_available


@dataclass
class FakeEvent:
    kind: str
    step: int
    total_steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


class FakeTrainer:
    """Yields a log event per step and a val event every 5; `stop()` ends it after a checkpoint."""

    made: list[FakeTrainer] = []  # noqa: RUF012

    def __init__(self, params: FineTuneParams) -> None:
        self.params = params
        self._stop = threading.Event()
        self.exported: Path | None = None
        FakeTrainer.made.append(self)

    def iter_fit(self) -> Iterator[FakeEvent]:
        total = self.params.steps
        for step in range(1, total + 1):
            if self._stop.is_set():
                ckpt = self.params.out_dir / "ckpt"
                ckpt.mkdir(parents=True, exist_ok=True)
                (ckpt / "last.pt").write_bytes(b"state")
                yield FakeEvent("checkpoint", step, total, message="stopped: saved checkpoint")
                break
            time.sleep(0.002)
            yield FakeEvent("log", step, total, {"loss/flow": 1.0 / step, "opt/lr": 1e-4})
            if step % 5 == 0:
                yield FakeEvent("val", step, total, {"val/lsd": 2.0 - step / total,
                                                     "val/lsd_sinc": 2.5})
        yield FakeEvent("done", step, total, message="done")

    def stop(self) -> None:
        self._stop.set()

    def export(self, path: Path) -> Path:
        path.with_suffix(".safetensors").write_bytes(b"weights")
        self.exported = path
        return path


@pytest.fixture
def window(qtbot: QtBot, settings: Settings, tmp_path: Path) -> Iterator[MainWindow]:
    FakeTrainer.made = []
    settings.set("finetune/folders", [str(tmp_path)])
    settings.set("finetune/out_dir", str(tmp_path / "runs"))
    settings.set("finetune/steps", 100_000)
    settings.set("finetune/batch_size", 4)
    w = MainWindow(settings, trainer_factory=FakeTrainer)
    qtbot.addWidget(w)
    w.tabs.setCurrentWidget(w.finetune)
    yield w
    w.close()


def test_start_plots_stop_and_export(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    page = window.finetune
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    assert page.minutes_spin.text() == "none"  # no time limit unless asked
    page.minutes_spin.setValue(45)
    page.start_button.click()
    assert page.stop_button.isEnabled() and not page.start_button.isEnabled()
    qtbot.waitUntil(lambda: len(page._series.get("val/lsd", ([], []))[0]) >= 2, timeout=10_000)
    (trainer,) = FakeTrainer.made
    assert trainer.params.folders == (str(tmp_path),)
    assert (trainer.params.steps, trainer.params.batch_size) == (100_000, 4)
    run = trainer.params.out_dir  # a folder of its own under the runs folder
    assert run.parent == tmp_path / "runs" and run.name.startswith("run-")
    assert trainer.params.cache_dir == tmp_path / "runs" / "cache" and not trainer.params.resume
    assert window.settings.get("finetune/last_run") == str(run)
    assert not page.resume_button.isEnabled()
    assert trainer.params.base_model == "default"  # the current model, resolved by the engine
    assert trainer.params.max_minutes == 45.0 and window.settings.get("finetune/max_minutes") == 45
    def plotted() -> int:
        x, _ = page.curves["loss/flow"].getData()
        return 0 if x is None else len(x)

    qtbot.waitUntil(lambda: plotted() >= 10, timeout=5000)
    assert page._series["loss/flow"][1][0] == 1.0
    page.stop_button.click()
    qtbot.waitUntil(lambda: page.start_button.isEnabled(), timeout=10_000)
    assert "Stopped" in page.status.text()
    assert "stopped: saved checkpoint" in page.log_view.toPlainText()
    assert page.export_button.isEnabled()
    assert page.resume_button.isEnabled()  # the run left a checkpoint
    target = tmp_path / "mine.safetensors"
    page.export_requested.emit(str(target))
    qtbot.waitUntil(lambda: window.settings.get("processing/model") == str(target),
                    timeout=10_000)
    assert trainer.exported == target
    assert window.panel.model_label.text() == "mine.safetensors"


def test_resume_continues_the_last_run_in_its_folder(qtbot: QtBot, window: MainWindow) -> None:
    page = window.finetune
    page.start_button.click()
    qtbot.waitUntil(lambda: len(page._series.get("loss/flow", ([], []))[0]) >= 5, timeout=10_000)
    page.stop_button.click()
    qtbot.waitUntil(lambda: page.resume_button.isEnabled(), timeout=10_000)
    points = len(page._series["loss/flow"][0])
    page.resume_button.click()
    assert not page.resume_button.isEnabled() and page.stop_button.isEnabled()
    qtbot.waitUntil(lambda: len(FakeTrainer.made) == 2, timeout=10_000)
    first, resumed = FakeTrainer.made
    assert resumed.params.resume and resumed.params.out_dir == first.params.out_dir
    qtbot.waitUntil(lambda: len(page._series["loss/flow"][0]) > points, timeout=10_000)
    assert "Resuming" in page.log_view.toPlainText()  # the curves go on, not cleared
    page.stop_button.click()
    qtbot.waitUntil(lambda: page.start_button.isEnabled(), timeout=10_000)
    page.start_button.click()  # a new run: a new folder, the old one left as it was
    qtbot.waitUntil(lambda: len(FakeTrainer.made) == 3, timeout=10_000)
    third = FakeTrainer.made[2]
    assert not third.params.resume and third.params.out_dir != first.params.out_dir
    assert (first.params.out_dir / "ckpt" / "last.pt").exists()
    page.stop_button.click()
    qtbot.waitUntil(lambda: page.start_button.isEnabled(), timeout=10_000)


def test_a_run_to_the_end_and_a_failing_trainer(qtbot: QtBot, window: MainWindow) -> None:
    page = window.finetune
    page.steps_spin.setValue(12)
    page.start_button.click()
    qtbot.waitUntil(lambda: page.status.text() == "Finished.", timeout=10_000)
    assert page.progress.value() == 1000
    window.training.worker._factory = _broken
    page.start_button.click()
    qtbot.waitUntil(lambda: page.status.text().startswith("Failed"), timeout=10_000)
    assert "no audio in the folders" in page.status.text()
    assert page.start_button.isEnabled()


def _broken(params: FineTuneParams) -> FakeTrainer:
    raise ValueError("no audio in the folders")


def test_start_needs_a_folder(qtbot: QtBot, window: MainWindow) -> None:
    page = window.finetune
    page.folder_list.clear()
    page.start_button.click()
    assert "Add at least one folder" in page.status.text() and not FakeTrainer.made


def test_without_the_engine_trainer_the_page_says_why(qtbot: QtBot, settings: Settings) -> None:
    ok, _ = trainer_available()
    w = MainWindow(settings)
    qtbot.addWidget(w)
    assert w.finetune.start_button.isEnabled() == ok
    if not ok:
        assert "trainer" in w.finetune.status.text()
    w.close()


def real_tiny_trainer(params: FineTuneParams) -> object:
    """The engine's own Trainer, tiny preset on the CPU: the contract, not a fake."""
    try:
        from engine import DataConfig, TrainConfig, Trainer  # type: ignore[attr-defined]
    except ImportError:  # not exported (yet): the same classes from their modules
        from engine.config import TrainConfig
        from engine.training.dataconfig import DataConfig
        from engine.training.loop import Trainer
    train = TrainConfig(preset="tiny", steps=params.steps, batch_size=params.batch_size,
                        num_workers=0, log_every=1, val_every=10_000, val_steps=2,
                        ckpt_every=10_000, stats_crops=4, warmup_steps=1)
    data = DataConfig(folders=params.folders, crop_s=1.5, val_files=1)
    return Trainer(None, train, data, out_dir=params.out_dir, device="cpu",  # from scratch
                   resume=params.resume)


def test_a_real_tiny_run_starts_stops_and_exports(qtbot: QtBot, settings: Settings,
                                                  tmp_path: Path) -> None:
    import soundfile as sf

    from engine import read_model_config
    from tests.engine.conftest import synth_clip

    data = tmp_path / "fullband"
    data.mkdir()
    for i in range(3):
        sf.write(data / f"clip{i}.wav", synth_clip(3.0, seed=i), 44100)
    settings.set("finetune/folders", [str(data)])
    settings.set("finetune/out_dir", str(tmp_path / "run"))
    settings.set("finetune/steps", 1000)
    settings.set("finetune/batch_size", 2)
    w = MainWindow(settings, trainer_factory=real_tiny_trainer)
    qtbot.addWidget(w)
    page = w.finetune
    page.start_button.click()
    qtbot.waitUntil(lambda: bool(page._series.get("loss/flow")), timeout=60_000)
    page.stop_button.click()  # finish the step, validate, checkpoint
    qtbot.waitUntil(lambda: page.start_button.isEnabled(), timeout=60_000)
    assert "Stopped" in page.status.text(), page.status.text()
    assert page._series["val/lsd"][1] and page._series["val/lsd_sinc"][1]
    run = Path(w.settings.get("finetune/last_run"))
    assert run.parent == tmp_path / "run" and (run / "ckpt" / "last.pt").exists()
    stopped_at = page._series["loss/flow"][0][-1]
    page.resume_button.click()  # the same run, from its checkpoint
    qtbot.waitUntil(lambda: page._series["loss/flow"][0][-1] > stopped_at, timeout=60_000)
    page.stop_button.click()
    qtbot.waitUntil(lambda: page.start_button.isEnabled(), timeout=60_000)
    assert "Stopped" in page.status.text(), page.status.text()
    steps = page._series["loss/flow"][0]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # it went on, not over
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name != "cache"] == [run.name]
    page.export_requested.emit(str(tmp_path / "mine"))
    qtbot.waitUntil(lambda: w.settings.get("processing/model") != "default", timeout=30_000)
    assert read_model_config(w.settings.get("processing/model"))["format"] == "jatsr-model"
    w.close()


def test_the_time_limit_fits_the_engine_schedule(tmp_path: Path) -> None:
    import soundfile as sf

    from app.workers.train_worker import engine_trainer
    from tests.engine.conftest import synth_clip

    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", synth_clip(3.0, seed=i), 44100)
    params = FineTuneParams((str(tmp_path),), "default", 500, 2, tmp_path / "run", "cpu", 20.0)
    train = engine_trainer(params).train_cfg
    assert (train.max_minutes, train.fit_schedule, train.steps) == (20.0, True, 500)
    unlimited = engine_trainer(dataclasses.replace(params, max_minutes=0.0)).train_cfg
    assert unlimited.max_minutes is None and not unlimited.fit_schedule


def _holds(whole: dict, part: dict) -> bool:
    """Whether `whole` has every key of `part` with the same value (nested dicts likewise)."""
    return all(k in whole and (_holds(whole[k], v) if isinstance(v, dict) else whole[k] == v)
               for k, v in part.items())


def test_a_fine_tune_makes_crops_as_its_base_model_was_trained(tmp_path: Path) -> None:
    import soundfile as sf

    from app.workers.train_worker import engine_trainer
    from engine import resolve_model_path, training_recipe
    from tests.engine.conftest import synth_clip

    for i in range(3):
        sf.write(tmp_path / f"clip{i}.wav", synth_clip(3.0, seed=i), 44100)
    recipe = training_recipe(resolve_model_path("default"))
    assert recipe is not None and recipe["tilt_prob"] > 0  # the shipped model's own recipe
    params = FineTuneParams((str(tmp_path),), "default", 5, 2, tmp_path / "run", "cpu")
    data = engine_trainer(params).data_cfg
    got = json.loads(json.dumps(data.recipe()))
    assert _holds(got, recipe) and data.folders == (str(tmp_path),)  # every field of the base's
    assert got["degrade"]["phone_prob"] == 0.0  # a field added since: DataConfig's default
    scratch = engine_trainer(dataclasses.replace(params, base_model=None,
                                                 out_dir=tmp_path / "run2")).data_cfg
    assert scratch.tilt_prob == 0.0  # a new model: DataConfig's defaults


def test_folders_dropped_on_the_finetune_tab_become_training_data(
        qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    from tests.app.test_main_window import drop

    page = window.finetune
    data = tmp_path / "my speech"
    data.mkdir()
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")

    def listed() -> list[str]:
        return [page.folder_list.item(i).text() for i in range(page.folder_list.count())]

    before = listed()
    drop(page.folder_list, [data, clip, data])  # a folder twice and a file
    assert listed() == [*before, str(data)]
    assert window.controller.model.rowCount() == 0  # nothing queued for restoring
    assert page.params().folders[-1] == str(data)
    drop(page.folder_list, [clip])
    assert listed() == [*before, str(data)]
    assert "only folders" in window.status.label.text().lower()
    window.tabs.setCurrentIndex(0)  # on the Restore tab a drop still queues files
    drop(window.spectrogram, [clip])
    qtbot.waitUntil(lambda: window.controller.model.rowCount() == 1, timeout=5000)
