"""Where the models look: Grad-CAM, Grad-CAM++, Score-CAM, CAM and CXR-Net's high-resolution heat maps.
"""
