"""The virtual environment of the Tools/mtcnn scripts (Tools/mtcnn/.venv, created once): a PyPI
torch with the torchvision it needs (facenet-pytorch's pins are years old, so it is installed
without its dependencies beside them), NumPy and Pillow."""
import os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, ".venv")
PINS = ["torchvision==0.29.2", "numpy==2.4.6", "pillow==13.0.0", "requests", "tqdm"]


def enter_venv():
    """Re-runs the calling script inside the environment, creating it first if needed."""
    if os.environ.get("FN2E_MTCNN_VENV") == "1":
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py) or subprocess.call([py, "-c", "import facenet_pytorch"], stderr=subprocess.DEVNULL) != 0:
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q"] + PINS)
        subprocess.check_call([py, "-m", "pip", "install", "-q", "--no-deps", "facenet-pytorch==2.6.0"])
    os.environ["FN2E_MTCNN_VENV"] = "1"
    os.execv(py, [py] + sys.argv)
