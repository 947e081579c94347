from setuptools import find_packages, setup

setup(
    name="nnabla-nas-detofa",
    version="0.1.0",
    description="DetOFA for NNablaNAS: once-for-all detection supernets pruned by a learned path filter",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["nnabla_nas_detofa", "nnabla_nas_detofa.*"]),
    package_data={"nnabla_nas_detofa": ["configs/*.yaml", "configs/experiment/detofa/*.yaml"]},
    python_requires=">=3.8,<3.11",
    install_requires=[
        "numpy~=1.26.0",
        "protobuf~=3.20.0",
        "nnabla==1.39.0",
        "nnabla-nas==0.15.0",
        "opencv-python-headless>=4.8,<4.12",
        "pycocotools>=2.0.6",
        "pyyaml>=5.4",
        "matplotlib>=3.5",
        "tqdm>=4.60",
    ],
    extras_require={
        "cuda": ["nnabla-ext-cuda120==1.39.0"],
        "test": ["pytest>=7", "pytest-xdist>=3"],
    },
    entry_points={
        "console_scripts": [
            "nnabla_nas=nnabla_nas_detofa.cli.main:main",
            "nnabla_nas_detofa=nnabla_nas_detofa.cli.tools:main_tools",
        ],
    },
)
