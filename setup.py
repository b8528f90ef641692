"""Build hook for the one C extension: accelir.codec._blockdecode (libjpeg-turbo block decoder).

Everything else about the package lives in pyproject.toml. The extension is optional: where no
C compiler or libjpeg headers are found (Debian: libjpeg62-turbo-dev), the install still
succeeds and ``accelir.codec.decode`` falls back to simplejpeg, one call per block.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "accelir.codec._blockdecode",
            sources=["accelir/codec/_blockdecode.c"],
            libraries=["jpeg"],
            extra_compile_args=["-O3", "-Wall"],
            optional=True,
        )
    ]
)
