"""Write data/breast-cancer.csv: scikit-learn's bundled breast-cancer data as CSV.

The example Dataset reads this file so that editing it is a data change the
loop notices. ``tests/reconcilers/test_data.py`` checks it still equals the
bundled data. Usage: python scripts/export_example_data.py
"""

from pathlib import Path

from sklearn.datasets import load_breast_cancer

TARGET = Path(__file__).resolve().parents[1] / "data" / "breast-cancer.csv"

if __name__ == "__main__":
    frame = load_breast_cancer(as_frame=True).frame
    TARGET.parent.mkdir(exist_ok=True)
    frame.to_csv(TARGET, index=False, lineterminator="\n")
    print(f"wrote {TARGET} ({len(frame)} rows, {frame.shape[1]} columns)")
