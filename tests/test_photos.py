"""Real photos in, an answer per face out: detection and alignment, the `emotion-ai-faces` served
model (bad photos refused with a clear error), `emotion-ai predict` on photos and video, and the
demo page in headless Chromium. The photos are scikit-image's real ones (its astronaut, a coffee
cup) and compositions of them."""

from __future__ import annotations

import base64
import csv
import io
import json

import cv2
import numpy as np
import psutil
import pytest
import requests
from browsers import headless_chromium
from PIL import Image
from playwright.sync_api import expect
from servers import free_port, running, serve_command
from skimage import data
from tiny_networks import TINY
from typer.testing import CliRunner, Result

from emotion_ai.cli import app
from emotion_ai.data.image_folders import FACES_REPORT, folder_to_fer_csv
from emotion_ai.faces import EMOTIONS
from emotion_ai.modeling.networks import build_emotion_model, build_keypoint_model
from emotion_ai.photos.alignment import LEFT_EYE_IN_CROP, RIGHT_EYE_IN_CROP, photo_to_crop
from emotion_ai.photos.analysis import fer_faces_of
from emotion_ai.photos.detection import FaceDetector
from emotion_ai.photos.video import IouTracker
from emotion_ai.release.model_repository import export_saved_model
from emotion_ai.serving.catalog import load_servables, versioned_parts
from emotion_ai.settings import (
    EMOTION_MODEL,
    KEYPOINT_MODEL,
    PHOTO_MODEL,
    DetectorSettings,
    ServingOptions,
)

ASTRONAUT = data.astronaut()
ASTRONAUT_FACE = (182, 64, 83, 107)
"""Where MTCNN finds the astronaut's face (x, y, width, height)."""


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(rgb: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=92, **options)
    return buffer.getvalue()


def face_crop(size: int) -> np.ndarray:
    """The astronaut's head, with some margin, `size` pixels high."""
    x, y, width, height = ASTRONAUT_FACE
    head = ASTRONAUT[y - 40 : y + height + 30, x - 35 : x + width + 35]
    scale = size / head.shape[0]
    return np.asarray(
        Image.fromarray(head).resize((round(head.shape[1] * scale), size), Image.Resampling.LANCZOS)
    )


def composed(sizes: list[int], shape=(480, 640)) -> np.ndarray:
    """A gray photo with the astronaut's head pasted in a row, one per size."""
    photo = np.full((*shape, 3), 110, np.uint8)
    x = 20
    for size in sizes:
        head = face_crop(size)
        photo[40 : 40 + head.shape[0], x : x + head.shape[1]] = head
        x += head.shape[1] + 20
    return photo


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    export_saved_model(build_keypoint_model(TINY), base, KEYPOINT_MODEL, 1)
    export_saved_model(build_emotion_model(TINY), base, EMOTION_MODEL, 1)
    return base


@pytest.fixture(scope="module")
def server(layout):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(serve_command(layout, port), f"{url}/v1/models/{PHOTO_MODEL}", layout / "log"):
        yield url


def ask(url: str, *photos: bytes, timeout: float = 60) -> requests.Response:
    body = {"instances": [{"b64": base64.b64encode(photo).decode()} for photo in photos]}
    return requests.post(f"{url}/v1/models/{PHOTO_MODEL}:predict", json=body, timeout=timeout)


def test_alignment_puts_the_eyes_level_on_the_training_framing(detector):
    for angle in (0, 20, -15):
        rotated = np.asarray(Image.fromarray(ASTRONAUT).rotate(angle, Image.Resampling.BILINEAR))
        [face] = detector.detect(rotated)
        eyes = np.array([[*face.right_eye, 1], [*face.left_eye, 1]]) @ photo_to_crop(face).T
        np.testing.assert_allclose(eyes, [RIGHT_EYE_IN_CROP, LEFT_EYE_IN_CROP], atol=1e-6)
        dx, dy = np.subtract(face.left_eye, face.right_eye)
        assert abs(np.degrees(np.arctan2(-dy, dx)) - angle) < 8, "MTCNN's eyes follow the turn"


def test_several_faces_and_small_ones_are_found_down_to_the_minimum_size(detector):
    faces = detector.detect(composed([200, 140, 100, 50]))  # faces about 94, 66, 47 and 23 px wide
    widths = sorted(round(face.box[2]) for face in faces)
    assert len(faces) == 3, f"the 23 px face is under min_face_size (40); found widths {widths}"
    assert all(face.score >= DetectorSettings().min_score for face in faces)


def test_a_photo_answers_every_face_in_photo_pixels(server):
    answer = ask(server, png(ASTRONAUT), png(composed([150, 120, 90])), jpeg(data.coffee()))
    assert answer.status_code == 200, answer.text
    astronaut, three, coffee = answer.json()["predictions"]
    assert coffee == [], "no face: an empty list"
    assert len(three) == 3
    [face] = astronaut
    x, y, width, height = face["box"]
    assert np.allclose([x, y, width, height], ASTRONAUT_FACE, atol=6)
    assert face["emotion"] in EMOTIONS and len(face["probabilities"]) == len(EMOTIONS)
    assert len(face["keypoints"]) == 15
    for px, py in face["keypoints"].values():  # mapped back near the face (the model is untrained)
        assert x - width < px < x + 2 * width and y - height < py < y + 2 * height


def test_exif_orientation_is_honoured(server):
    sideways = np.ascontiguousarray(np.rot90(ASTRONAUT, k=1))  # stored turned, EXIF says turn back
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    [[face]] = ask(server, jpeg(sideways, exif=exif.tobytes())).json()["predictions"]
    assert np.allclose(face["box"], ASTRONAUT_FACE, atol=8)


@pytest.mark.parametrize(
    "photo, status, words",
    [
        (b"this is not an image", 400, "not a PNG or JPEG"),
        (jpeg(ASTRONAUT)[:4000], 400, "not a readable PNG or JPEG"),
    ],
    ids=["not-an-image", "truncated-jpeg"],
)
def test_a_bad_photo_gets_a_400_naming_the_problem(server, photo, status, words):
    answer = ask(server, photo)
    assert answer.status_code == status and words in answer.json()["error"]


def test_a_10000x10000_png_is_refused_from_its_header_with_memory_bounded(server, tmp_path):
    buffer = io.BytesIO()
    Image.new("L", (10_000, 10_000), 0).save(buffer, format="PNG")  # 100 MP, ~100 kB compressed
    [process] = [
        p
        for p in psutil.process_iter(["cmdline"])
        if server.split(":")[-1] in (p.info["cmdline"] or [])
    ]
    before = process.memory_info().rss
    answer = ask(server, buffer.getvalue())
    assert answer.status_code == 413 and "10000x10000" in answer.json()["error"]
    assert process.memory_info().rss - before < 100 * 2**20, "the photo was never decoded"


def test_concurrent_photos_all_get_their_faces(server):
    from concurrent.futures import ThreadPoolExecutor

    photos = [png(composed([150] * n)) for n in (1, 2, 3, 1, 2, 3)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda photo: ask(server, photo), photos))
    assert [len(a.json()["predictions"][0]) for a in answers] == [1, 2, 3, 1, 2, 3]


def test_the_iou_tracker_keeps_ids_while_faces_move_and_starts_new_ones():
    tracker = IouTracker()
    assert tracker.assign([[0, 0, 10, 10], [50, 50, 10, 10]]) == [1, 2]
    assert tracker.assign([[52, 51, 10, 10], [1, 1, 10, 10]]) == [2, 1]
    assert tracker.assign([[100, 100, 10, 10]]) == [3]


def run_predict(*arguments: str) -> Result:
    """`emotion-ai predict` in this process (its detector and models load as in a process of its
    own; `test_end_to_end` runs it as one)."""
    return CliRunner().invoke(app, ["predict", *arguments])


def test_predict_prints_every_face_and_writes_the_annotated_photo(layout, tmp_path):
    photo = tmp_path / "astronaut.png"
    photo.write_bytes(png(ASTRONAUT))
    out = tmp_path / "astronaut-annotated.png"
    done = run_predict(
        str(photo), "--model-base-path", str(layout), "--annotate", str(out), "--json"
    )
    assert done.exit_code == 0, done.stderr[-2000:]
    [result] = json.loads(done.stdout)["results"]
    [face] = result["faces"]
    assert face["emotion"] in EMOTIONS and result["annotated"] == str(out)
    drawn = np.asarray(Image.open(out).convert("RGB")).astype(int)
    x, y, _, height = (round(v) for v in face["box"])
    assert (np.abs(drawn[y + height // 2, x] - (255, 196, 0)) < 40).all(), "the box is drawn"
    table = run_predict(str(photo), "--model-base-path", str(layout))
    assert table.exit_code == 0 and "1 face" in table.stdout and face["emotion"][:5] in table.stdout


def test_predict_answers_every_good_photo_and_names_each_bad_one(layout, tmp_path):
    good, bad = tmp_path / "astronaut.png", tmp_path / "notanimage.png"
    good.write_bytes(png(ASTRONAUT))
    bad.write_bytes(b"this is not an image")
    done = run_predict(str(good), str(bad), "--model-base-path", str(layout))
    assert done.exit_code == 1
    assert "1 face" in done.stdout, "the good photo is answered"
    assert f"{bad}: not a PNG or JPEG photo" in done.stdout.replace("\n", "")
    assert "object at 0x" not in done.stdout + done.stderr
    as_json = json.loads(
        run_predict(str(bad), str(good), "--model-base-path", str(layout), "--json").stdout
    )
    assert [sorted(r) for r in as_json["results"]] == [["error", "path"], ["faces", "path"]]


def test_predict_follows_the_faces_of_a_video_and_writes_their_timeline(layout, tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (640, 480))
    for shift in range(30):  # 3 s: two heads drifting right
        frame = np.roll(composed([150, 150]), 2 * shift, axis=1)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "annotated"
    done = run_predict(
        str(video), "--model-base-path", str(layout), "--fps", "2", "--annotate", str(out),
        "--timeline", str(tmp_path / "timelines"), "--json",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr[-2000:]
    [result] = json.loads(done.stdout)["results"]
    assert result["faces_tracked"] == 2 and result["samples"] == 6
    rows = json.loads((tmp_path / "timelines" / "clip.json").read_text())
    assert sorted({row["face_id"] for row in rows}) == [1, 2] and len(rows) == 12
    assert (tmp_path / "timelines" / "clip.png").stat().st_size > 10_000
    annotated = cv2.VideoCapture(result["annotated"])
    assert annotated.isOpened() and int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 6


def test_the_demo_page_draws_and_labels_the_face_of_an_uploaded_photo(server, tmp_path):
    """...and a failed upload after it leaves neither that photo nor its faces on the page."""
    photo, not_a_photo = tmp_path / "astronaut.png", tmp_path / "notes.png"
    photo.write_bytes(png(ASTRONAUT))
    not_a_photo.write_text("not an image")
    with headless_chromium() as browser:
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(f"{server}/")
        page.set_input_files("#photo", str(photo))
        expect(page.locator("#canvas")).to_have_attribute("data-faces", "1", timeout=60_000)
        expect(page.locator("#faces li")).to_have_count(1)
        assert page.locator("#faces li").inner_text().split(" ")[0] in EMOTIONS
        x, y, _, height = ASTRONAUT_FACE
        box_pixel = page.evaluate(
            f"Array.from(document.getElementById('canvas').getContext('2d')"
            f".getImageData({x}, {y + height // 2}, 1, 1).data)"
        )
        assert np.abs(np.subtract(box_pixel[:3], (255, 196, 0))).max() < 40, box_pixel
        page.screenshot(path=tmp_path / "demo.png")
        page.set_input_files("#photo", str(not_a_photo))
        expect(page.locator("#canvas")).to_have_attribute("data-faces", "error")
        expect(page.locator("#status")).to_contain_text("notes.png is not a photo")
        expect(page.locator("#faces li")).to_have_count(0)
        assert page.evaluate("document.getElementById('canvas').width") == 0


def test_photo_folders_become_fer_rows_of_their_one_face_and_the_rest_is_reported(
    detector, tmp_path
):
    root = tmp_path / "photos"
    for folder, name, photo in (
        ("Happy", "astronaut.png", png(ASTRONAUT)),
        ("Happy", "two-people.png", png(composed([150, 150]))),
        ("Sad", "coffee.jpg", jpeg(data.coffee())),
        ("Surprise", "turned.png", png(np.asarray(Image.fromarray(ASTRONAUT).rotate(15)))),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_bytes(photo)
    destination = tmp_path / "raw" / "data.csv"
    destination.parent.mkdir()
    folder_to_fer_csv(root, destination, fer_faces_of(detector))
    rows = list(csv.DictReader(destination.open()))
    assert [int(row["emotion"]) for row in rows] == [3, 5], "Happy and Surprise (FER codes)"
    assert all(len(row["pixels"].split()) == 48 * 48 for row in rows)
    report = json.loads((tmp_path / "raw" / FACES_REPORT).read_text())
    assert report == {
        "photos": 4,
        "kept": 2,
        "no_face": ["Sad/coffee.jpg"],
        "several_faces": ["Happy/two-people.png"],
    }


def test_a_server_of_the_faces_model_alone_follows_both_models_versions(layout):
    models = load_servables(layout, PHOTO_MODEL, ServingOptions(enable_batching=False))
    assert [model.name for model in models] == [PHOTO_MODEL]
    assert sorted(part.name for part in versioned_parts(models)) == [EMOTION_MODEL, KEYPOINT_MODEL]
