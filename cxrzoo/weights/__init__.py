"""Published weights: the manifest, verified local copies, and loading into models.

    >>> import cxrzoo
    >>> cxrzoo.list_weights("res_cr_net")
    ['res_cr_net.jms_lungs', 'res_cr_net.v7_lungs']
    >>> path = cxrzoo.get_weights_file("res_cr_net.v7_lungs")   # mirror → cache → verified download

See :mod:`cxrzoo.weights.files` for the resolution order and the environment variables.
"""

from cxrzoo.weights.errors import (
    UnknownWeightsError,
    UnsafeWeightsFileError,
    WeightsDownloadError,
    WeightsError,
    WeightsHashError,
    WeightsNotFoundError,
)
from cxrzoo.weights.files import (
    VerifyResult,
    cache_root,
    fetch_weights,
    file_hash,
    get_weights_file,
    get_weights_files,
    mirror_folders,
    unobtainable_by_design,
    verify_all,
    verify_file,
    verify_weights,
)
from cxrzoo.weights.manifest import WeightsEntry, WeightsFile, list_weights, weights_info

__all__ = [
    "UnknownWeightsError",
    "UnsafeWeightsFileError",
    "VerifyResult",
    "WeightsDownloadError",
    "WeightsEntry",
    "WeightsError",
    "WeightsFile",
    "WeightsHashError",
    "WeightsNotFoundError",
    "cache_root",
    "fetch_weights",
    "file_hash",
    "get_weights_file",
    "get_weights_files",
    "list_weights",
    "mirror_folders",
    "unobtainable_by_design",
    "verify_all",
    "verify_file",
    "verify_weights",
    "weights_info",
]
